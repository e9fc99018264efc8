/**
 * Ingest benchmark: bare Express 5 + express.json() (A) against firstparty mounted in
 * Express 5 with one no-op destination (B), side by side in one run.
 *
 *   node --import @swc-node/register/esm-register benchmarks/ingest/run.ts
 *
 * Each server runs in its own child process and the load generator in a third, so no
 * two of them share an event loop. Rounds alternate A, B, A, B, … so drift (thermal,
 * noisy neighbours) hits both. Per round: warm-up, then a measured window at whose
 * edges the server samples its own CPU time. After the last round each firstparty
 * server is drained and its no-op destination's count is checked against every event
 * the load generator saw acknowledged. Results go to benchmarks/ingest/results.md.
 *
 * Environment:
 *   BENCH_DURATION_S (10)  BENCH_WARMUP_S (3)  BENCH_CONNECTIONS (16)  BENCH_ROUNDS (3)
 *   BENCH_SERVERS (A,B)    add C for firstparty with dedup off (a diagnostic)
 *   BENCH_RESULTS          results file (default benchmarks/ingest/results.md; "-" for none)
 *   BENCH_PROFILE=<dir>    CPU-profile each server's measured windows (default servers: B),
 *                          print the top functions, write no results file
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FromChild, ToChild } from './child.js'
import type { FromLoad, LoadConfig } from './load.js'
import { EVENT_BYTES, EVENTS_PER_REQUEST } from './payload.js'
import { summarizeProfile } from './profile-summary.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const num = (name: string, def: number) => {
  const v = Number(process.env[name] ?? def)
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`)
  return v
}
const durationMs = num('BENCH_DURATION_S', 10) * 1000
const warmupMs = num('BENCH_WARMUP_S', 3) * 1000
const connections = num('BENCH_CONNECTIONS', 16)
const rounds = num('BENCH_ROUNDS', 3)
const profileDir = process.env.BENCH_PROFILE
const resultsFile = process.env.BENCH_RESULTS ?? join(here, 'results.md')
const REGISTER = ['--import', '@swc-node/register/esm-register']
let shuttingDown = false

type Key = 'A' | 'B' | 'C'
interface ServerSpec {
  key: Key
  label: string
  file: string
  env?: Record<string, string>
  firstparty: boolean
}
const SERVERS: ServerSpec[] = [
  { key: 'A', label: 'A: express 5 + express.json()', file: 'server-express.ts', firstparty: false },
  { key: 'B', label: 'B: express 5 + firstparty, no-op destination', file: 'server-firstparty.ts', firstparty: true },
  { key: 'C', label: 'C: B with dedup off (diagnostic)', file: 'server-firstparty.ts', env: { BENCH_DEDUP: 'off' }, firstparty: true },
]
const selected = (process.env.BENCH_SERVERS ?? (profileDir ? 'B' : 'A,B')).split(',').map((s) => s.trim().toUpperCase())
const specs = SERVERS.filter((s) => selected.includes(s.key))
if (specs.length !== selected.length) throw new Error(`BENCH_SERVERS: pick from ${SERVERS.map((s) => s.key).join(', ')}`)

interface Child {
  spec: ServerSpec
  proc: ChildProcess
  port: number
  ask<T extends ToChild['type']>(m: Omit<Extract<ToChild, { type: T }>, 'id'> & { type: T }): Promise<Extract<FromChild, { type: T }>>
}

function start(spec: ServerSpec): Promise<Child> {
  const env = { ...process.env, ...spec.env, BENCH_SERVER: spec.key, BENCH_PROFILE: profileDir ?? '' }
  const proc = fork(join(here, spec.file), [], { cwd: root, env, execArgv: REGISTER, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let nextId = 1
  const waiting = new Map<number, (m: FromChild) => void>()
  proc.on('message', (m: FromChild) => {
    if ('id' in m) waiting.get(m.id)?.(m)
  })
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => {
      if (shuttingDown) return
      const err = new Error(`${spec.label} exited early (code ${code})`)
      reject(err)
      // After start-up nothing awaits this promise: stop the run rather than hang.
      console.error(err.message)
      process.exit(1)
    })
    proc.once('message', (m: FromChild) => {
      if (m.type !== 'ready') return reject(new Error(`${spec.label}: unexpected first message ${m.type}`))
      resolve({
        spec,
        proc,
        port: m.port,
        ask: (msg) =>
          new Promise((res) => {
            const id = nextId++
            waiting.set(id, res as (m: FromChild) => void)
            proc.send({ ...msg, id })
          }),
      })
    })
  })
}

interface Round {
  server: Key
  round: number
  reqPerSec: number
  eventsPerSec: number
  cpuMicrosPerReq: number
  /** Server CPU over the window (1 = one core busy). */
  serverCpu: number
  loadCpu: number
  p50: number
  p99: number
  rssMB: number
  acknowledged: number
  failures: number
}

async function runRound(child: Child, round: number): Promise<Round> {
  const cfg: LoadConfig = { port: child.port, connections, warmupMs, durationMs, run: `${child.spec.key}${round}-${process.pid}` }
  const load = fork(join(here, 'load.ts'), [JSON.stringify(cfg)], { cwd: root, execArgv: REGISTER, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let m0: Extract<FromChild, { type: 'mark' }> | undefined
  let m1: Extract<FromChild, { type: 'mark' }> | undefined
  const marks: Array<Promise<void>> = []
  const result = await new Promise<Extract<FromLoad, { type: 'result' }>>((resolve, reject) => {
    load.once('exit', (code) => code !== 0 && reject(new Error(`load generator exited with code ${code}`)))
    load.on('message', (m: FromLoad) => {
      if (m.type !== 'window') return resolve(m)
      const mark = child.ask({ type: 'mark', ...(profileDir ? { profile: m.phase === 'start' ? 'start' : 'stop' } : {}) })
      marks.push(mark.then((r) => void (m.phase === 'start' ? (m0 = r) : (m1 = r))))
    })
  })
  await Promise.all(marks)
  const windowS = result.windowMs / 1000
  const cpu = m1!.cpuMicros - m0!.cpuMicros
  if (result.failures) console.error(`  ${result.failures} failed requests; first: ${result.firstFailure}`)
  return {
    server: child.spec.key,
    round,
    reqPerSec: result.requests / windowS,
    eventsPerSec: (result.requests * EVENTS_PER_REQUEST) / windowS,
    cpuMicrosPerReq: cpu / (m1!.requests - m0!.requests),
    serverCpu: cpu / 1000 / result.windowMs,
    loadCpu: result.loadCpu,
    p50: result.p50,
    p99: result.p99,
    rssMB: m1!.rssBytes / 2 ** 20,
    acknowledged: result.acknowledged,
    failures: result.failures,
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const f0 = (x: number) => Math.round(x).toLocaleString('en-US')
const f2 = (x: number) => x.toFixed(2)
const pctS = (x: number) => `${(x * 100).toFixed(1)} %`
const load3 = () => loadavg().map((x) => x.toFixed(2)).join(' / ')

function machine(): { nproc: string; cpu: string } {
  let nproc = String(availableParallelism())
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim()
  } catch {}
  let cpu = 'unknown'
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu
  } catch {}
  return { nproc, cpu }
}

async function main(): Promise<void> {
  if (profileDir) mkdirSync(profileDir, { recursive: true })
  const children: Child[] = []
  for (const s of specs) children.push(await start(s))
  const { nproc, cpu } = machine()
  const loadBefore = load3()
  console.log(`ingest benchmark: ${rounds} rounds × ${specs.map((s) => s.key).join(',')}, ${connections} connections, warm-up ${warmupMs / 1000} s, window ${durationMs / 1000} s`)
  console.log(`node ${process.version}, nproc ${nproc}, ${cpu}, load average ${loadBefore}; batch of ${EVENTS_PER_REQUEST} events, ${Math.min(...EVENT_BYTES)}–${Math.max(...EVENT_BYTES)} B each`)

  const all: Round[] = []
  for (let i = 1; i <= rounds; i++) {
    for (const c of children) {
      const r = await runRound(c, i)
      all.push(r)
      console.log(
        `  round ${i} ${c.spec.key}: ${f0(r.reqPerSec)} req/s, ${f0(r.eventsPerSec)} events/s, ${f0(r.cpuMicrosPerReq)} µs CPU/req ` +
          `(server ${pctS(r.serverCpu)}, load-gen ${pctS(r.loadCpu)} of a core), p50 ${f2(r.p50)} ms, p99 ${f2(r.p99)} ms`,
      )
    }
  }
  const loadAfter = load3()

  // Correctness: every event a firstparty server acknowledged reached its no-op destination.
  const failures = all.reduce((n, r) => n + r.failures, 0)
  const checks: string[] = []
  let lossFree = true
  for (const c of children.filter((c) => c.spec.firstparty)) {
    const d = (await c.ask({ type: 'drain' })).info
    const acked = all.filter((r) => r.server === c.spec.key).reduce((n, r) => n + r.acknowledged, 0) * EVENTS_PER_REQUEST
    const ok = d.received === acked && d.accepted === acked && d.deduplicated === 0 && d.deadLettered === 0 && d.held === 0
    lossFree &&= ok
    const n = (x: number | undefined) => (x ?? NaN).toLocaleString('en-US')
    checks.push(
      `${c.spec.key} acknowledged ${n(acked)} events (all rounds, warm-up included); router accepted ${n(d.accepted)}, ` +
        `deduplicated ${n(d.deduplicated)}, dead-lettered ${n(d.deadLettered)}, still held ${n(d.held)}; ` +
        `no-op destination received ${n(d.received)} → ${ok ? 'no loss' : 'MISMATCH'}`,
    )
  }
  checks.push(`failed or non-200 requests (all servers): ${failures}`)
  for (const line of checks) console.log(line)
  if (!lossFree || failures) process.exitCode = 1

  shuttingDown = true
  for (const c of children) {
    const exited = new Promise((r) => c.proc.once('exit', r))
    c.proc.send({ type: 'exit' } satisfies ToChild)
    await exited
  }

  if (profileDir) {
    for (const s of specs) {
      const file = join(profileDir, `${s.key}-${rounds}.cpuprofile`)
      console.log(`\n=== ${s.label}: ${file} (round ${rounds}; earlier rounds beside it)\n`)
      console.log(summarizeProfile(file, root))
    }
    return
  }

  const agg = (k: Key) => {
    const rs = all.filter((r) => r.server === k)
    return {
      reqPerSec: median(rs.map((r) => r.reqPerSec)),
      eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
      cpu: median(rs.map((r) => r.cpuMicrosPerReq)),
      serverCpu: median(rs.map((r) => r.serverCpu)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      rssMB: Math.max(...rs.map((r) => r.rssMB)),
    }
  }
  const aggs = new Map(specs.map((s) => [s.key, agg(s.key)]))
  const A = aggs.get('A')
  const ratios: string[] = []
  if (A) {
    for (const s of specs.filter((s) => s.firstparty)) {
      const X = aggs.get(s.key)!
      const t = X.eventsPerSec / A.eventsPerSec
      const verdict = t >= 0.7 ? 'meets it' : `misses by ${((0.7 - t) * 100).toFixed(1)} points`
      ratios.push(
        `**${s.key}/A events/s: ${pctS(t)}** (target ≥ 70 %: ${verdict}). ${s.key}/A CPU per request: ${f2(X.cpu / A.cpu)}× ` +
          `(events/s ratio if both were CPU-bound: ${pctS(A.cpu / X.cpu)}).`,
      )
    }
  }
  console.log('\n' + ratios.join('\n'))

  if (resultsFile === '-') return
  const row = (s: ServerSpec) => {
    const x = aggs.get(s.key)!
    return `| ${s.label} | ${f0(x.reqPerSec)} | ${f0(x.eventsPerSec)} | ${f0(x.cpu)} | ${pctS(x.serverCpu)} | ${f2(x.p50)} | ${f2(x.p99)} | ${f0(x.rssMB)} |`
  }
  const md = `# Ingest benchmark results

Measured ${new Date().toISOString()} — node ${process.version}, \`nproc\` ${nproc}, ${cpu}.
Load average (1/5/15 min) before the run ${loadBefore}, after ${loadAfter}.

Each server in its own process, load from a third process: ${connections} keep-alive
connections, closed loop, ${warmupMs / 1000} s warm-up then a ${durationMs / 1000} s window, ${rounds} rounds
alternating ${specs.map((s) => s.key).join(', ')}. Request: \`POST /v1/batch\`, Basic auth, one Segment batch of
${EVENTS_PER_REQUEST} events (16 track, 4 identify; ${Math.min(...EVENT_BYTES)}–${Math.max(...EVENT_BYTES)} B each, fresh messageIds per request).
CPU per request is the server process's own \`process.cpuUsage()\` (user + system)
over the window divided by the requests it received in it. Figures are the median of
the rounds (RSS: the largest).

| server | req/s | events/s | CPU µs/req | server CPU | p50 ms | p99 ms | RSS MB |
|---|---:|---:|---:|---:|---:|---:|---:|
${specs.map(row).join('\n')}

${ratios.join('\n')}

Correctness: ${checks.join('; ')}.

## Rounds

| round | server | req/s | events/s | CPU µs/req | server CPU | load-gen CPU | p50 ms | p99 ms |
|---:|---|---:|---:|---:|---:|---:|---:|---:|
${all.map((r) => `| ${r.round} | ${r.server} | ${f0(r.reqPerSec)} | ${f0(r.eventsPerSec)} | ${f0(r.cpuMicrosPerReq)} | ${pctS(r.serverCpu)} | ${pctS(r.loadCpu)} | ${f2(r.p50)} | ${f2(r.p99)} |`).join('\n')}

"server CPU" and "load-gen CPU": the share of one core each process used over the
window (the machine has ${nproc}). A server below ~95 % was not the bottleneck: the
machine was (other processes, the load generator, the kernel's loopback work).

Command: \`npm run bench:ingest\` (= \`node --import @swc-node/register/esm-register benchmarks/ingest/run.ts\`);
settings: BENCH_DURATION_S=${durationMs / 1000} BENCH_WARMUP_S=${warmupMs / 1000} BENCH_CONNECTIONS=${connections} BENCH_ROUNDS=${rounds} BENCH_SERVERS=${specs.map((s) => s.key).join(',')}.
`
  writeFileSync(resultsFile, md)
  console.log(`results written to ${relative(process.cwd(), resultsFile)}`)
}

await main()
