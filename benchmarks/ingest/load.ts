/**
 * The load generator, in its own process so it never competes with a server for the
 * server's event loop: a fixed number of keep-alive connections, each sending the next
 * request as soon as the previous answer arrives (closed loop). It tells the
 * orchestrator when the measured window opens and closes, so the server can sample
 * its CPU time at the same moments.
 */
import { Agent, request } from 'node:http'
import { AUTHORIZATION, batchBody, PATH } from './payload.js'

export interface LoadConfig {
  port: number
  connections: number
  warmupMs: number
  durationMs: number
  /** Prefix for messageIds, unique per round, so no two requests share an id. */
  run: string
}

export type FromLoad =
  | { type: 'window'; phase: 'start' | 'end' }
  | {
      type: 'result'
      /** Requests that completed inside the measured window. */
      requests: number
      windowMs: number
      /** Latencies (ms) of the measured requests, sorted. */
      p50: number
      p99: number
      max: number
      /** Every 200 {"success":true} of the round, warm-up included. */
      acknowledged: number
      failures: number
      firstFailure: string | undefined
      /** The load generator's own CPU use over the window (1 = one core busy). */
      loadCpu: number
    }

const cfg = JSON.parse(process.argv[2]!) as LoadConfig
const send = (m: FromLoad) => process.send!(m)
const agent = new Agent({ keepAlive: true, maxSockets: cfg.connections })

let phase: 'warmup' | 'measure' | 'stopping' = 'warmup'
let windowStart = 0n
let windowEnd = 0n
let n = 0
let acknowledged = 0
let failures = 0
let firstFailure: string | undefined
const latencies: number[] = []

function one(): Promise<void> {
  const body = batchBody(cfg.run, n++)
  const started = process.hrtime.bigint()
  return new Promise<void>((resolve) => {
    const fail = (why: string) => {
      failures++
      firstFailure ??= why
      resolve()
    }
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port: cfg.port,
        method: 'POST',
        path: PATH,
        headers: { 'content-type': 'application/json', authorization: AUTHORIZATION, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => {
          const ended = process.hrtime.bigint()
          if (res.statusCode !== 200 || text !== '{"success":true}') return fail(`${res.statusCode} ${text.slice(0, 200)}`)
          acknowledged++
          if (phase === 'measure' && started >= windowStart) latencies.push(Number(ended - started) / 1e6)
          resolve()
        })
        res.on('error', (e) => fail(e.message))
      },
    )
    req.on('error', (e) => fail(e.message))
    req.end(body)
  })
}

async function connection(): Promise<void> {
  while (phase !== 'stopping') await one()
}

const loops = Array.from({ length: cfg.connections }, connection)
await new Promise((r) => setTimeout(r, cfg.warmupMs))
phase = 'measure'
windowStart = process.hrtime.bigint()
const cpu0 = process.cpuUsage()
send({ type: 'window', phase: 'start' })
await new Promise((r) => setTimeout(r, cfg.durationMs))
windowEnd = process.hrtime.bigint()
const cpu = process.cpuUsage(cpu0)
send({ type: 'window', phase: 'end' })
phase = 'stopping'
await Promise.all(loops)
agent.destroy()

const windowMs = Number(windowEnd - windowStart) / 1e6
latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN
send({
  type: 'result',
  requests: latencies.length,
  windowMs,
  p50: pct(50),
  p99: pct(99),
  max: latencies[latencies.length - 1] ?? NaN,
  acknowledged,
  failures,
  firstFailure,
  loadCpu: (cpu.user + cpu.system) / 1000 / windowMs,
})
process.disconnect()
