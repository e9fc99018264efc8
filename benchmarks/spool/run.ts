/**
 * Spool benchmark: intake → delivery through the memory, SQLite and Redis spools, side
 * by side in one run, each router with one no-op destination.
 *
 *   npm run bench:spool
 *
 * Each router runs in its own child process and the load generator (the ingest
 * benchmark's: keep-alive connections, closed loop, 20-event Segment batches) in
 * another. At the edges of the measured window the router samples its own CPU time and
 * its destination's delivered count; for Redis the run also reads redis-server's CPU
 * (INFO cpu) over the same window, since the work is shared with it. Per core = events
 * delivered in the window ÷ CPU-seconds the router process used in it. After each round
 * the router is drained and every acknowledged event must have been delivered.
 * Rounds alternate the backends (memory, sqlite, redis, memory, …) so drift hits all.
 *
 * Environment: BENCH_DURATION_S (10) BENCH_WARMUP_S (3) BENCH_CONNECTIONS (16)
 * BENCH_ROUNDS (2) BENCH_BACKENDS (memory,sqlite,redis) BENCH_REDIS_URL
 * (redis://127.0.0.1:6379) BENCH_RESULTS (benchmarks/spool/results.md; "-" for none).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { SpoolConfig } from '../../src/config.js'
import type { FromLoad, LoadConfig } from '../ingest/load.js'
import { EVENTS_PER_REQUEST } from '../ingest/payload.js'
import type { FromServer, ToServer } from './server.js'

const here = dirname(fileURLToPath(import.meta.url))
const num = (name: string, def: number) => {
  const v = Number(process.env[name] ?? def)
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`)
  return v
}
const durationMs = num('BENCH_DURATION_S', 10) * 1000
const warmupMs = num('BENCH_WARMUP_S', 3) * 1000
const connections = num('BENCH_CONNECTIONS', 16)
const rounds = num('BENCH_ROUNDS', 2)
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const backends = (process.env.BENCH_BACKENDS ?? 'memory,sqlite,redis').split(',').map((s) => s.trim()) as Array<'memory' | 'sqlite' | 'redis'>
const resultsFile = process.env.BENCH_RESULTS ?? join(here, 'results.md')
const REGISTER = ['--import', '@swc-node/register/esm-register']
const tmp = mkdtempSync(join(tmpdir(), 'fp-bench-spool-'))

interface Round {
  backend: string
  intakePerS: number
  deliveredPerS: number
  routerCores: number
  perCore: number
  redisCores: number | undefined
  p50: number
  p99: number
  acknowledged: number
  delivered: number
  ok: boolean
}

function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return
      child.off('message', on)
      resolve(m as T)
    }
    child.on('message', on)
    child.once('exit', (code) => reject(new Error(`child exited (${code}) waiting for ${type}`)))
  })
}

async function redisCpu(r: Redis): Promise<number> {
  const info = await r.info('cpu')
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return get('used_cpu_user') + get('used_cpu_sys')
}

async function round(backend: 'memory' | 'sqlite' | 'redis', i: number, redis: Redis | undefined): Promise<Round> {
  const stream = `fp-bench-${process.pid}-${i}`
  const spool: SpoolConfig =
    backend === 'memory' ? { type: 'memory' }
    : backend === 'sqlite' ? { type: 'sqlite', path: join(tmp, `spool-${i}.db`) }
    : { type: 'redis', url: redisUrl, stream, consumer: 'bench' }
  const server = fork(join(here, 'server.ts'), [], { execArgv: REGISTER, env: { ...process.env, BENCH_SPOOL: JSON.stringify(spool) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const { port } = await next<{ port: number }>(server, 'listening')
  const cfg: LoadConfig = { port, connections, warmupMs, durationMs, run: `${backend}-${i}-${process.pid}` }
  const load = fork(join(here, '..', 'ingest', 'load.ts'), [JSON.stringify(cfg)], { execArgv: REGISTER, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const samples: Array<{ cpuUs: number; delivered: number; redis: number | undefined; at: number }> = []
  const resultP = new Promise<Extract<FromLoad, { type: 'result' }>>((resolve) => {
    load.on('message', async (m: FromLoad) => {
      if (m.type === 'window') {
        const s = next<{ cpuUs: number; delivered: number }>(server, 'sample')
        server.send({ type: 'sample' } satisfies ToServer)
        const [x, rc] = await Promise.all([s, redis && backend === 'redis' ? redisCpu(redis) : Promise.resolve(undefined)])
        samples.push({ cpuUs: x.cpuUs, delivered: x.delivered, redis: rc, at: Date.now() })
      } else resolve(m)
    })
  })
  const result = await resultP
  while (samples.length < 2) await new Promise((r) => setTimeout(r, 10))
  const [a, b] = samples as [(typeof samples)[0], (typeof samples)[0]]
  const windowS = (b.at - a.at) / 1000
  const drained = next<Extract<FromServer, { type: 'drained' }>>(server, 'drained')
  server.send({ type: 'drain' } satisfies ToServer)
  const d = await drained
  server.send({ type: 'close' } satisfies ToServer)
  await new Promise((r) => server.once('exit', r))
  if (redis && backend === 'redis') {
    const keys = await redis.keys(`${stream}*`)
    if (keys.length) await redis.del(...keys)
  }
  const cpuS = (b.cpuUs - a.cpuUs) / 1e6
  const deliveredInWindow = b.delivered - a.delivered
  const acknowledgedEvents = result.acknowledged * EVENTS_PER_REQUEST
  return {
    backend,
    intakePerS: (result.requests * EVENTS_PER_REQUEST) / (result.windowMs / 1000),
    deliveredPerS: deliveredInWindow / windowS,
    routerCores: cpuS / windowS,
    perCore: deliveredInWindow / cpuS,
    redisCores: a.redis !== undefined && b.redis !== undefined ? (b.redis - a.redis) / windowS : undefined,
    p50: result.p50,
    p99: result.p99,
    acknowledged: acknowledgedEvents,
    delivered: d.delivered,
    ok: d.delivered >= acknowledgedEvents && result.failures === 0,
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function main(): Promise<void> {
  const redis = backends.includes('redis') ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : undefined
  if (redis) await redis.ping()
  const all: Round[] = []
  for (let r = 0; r < rounds; r++) {
    for (const b of backends) {
      const x = await round(b, all.length, redis)
      all.push(x)
      process.stderr.write(`round ${r + 1} ${b}: intake ${fmt(x.intakePerS)}/s, delivered ${fmt(x.deliveredPerS)}/s, router ${x.routerCores.toFixed(2)} cores → ${fmt(x.perCore)} events/s per core${x.redisCores !== undefined ? `, redis-server ${x.redisCores.toFixed(2)} cores` : ''}, p99 ${x.p99.toFixed(1)} ms, ${x.ok ? 'all acknowledged events delivered' : `LOST: ${x.delivered}/${x.acknowledged}`}\n`)
    }
  }
  await redis?.quit()
  rmSync(tmp, { recursive: true, force: true })

  const rows = backends.map((b) => {
    const rs = all.filter((x) => x.backend === b)
    const redisCores = rs[0]!.redisCores !== undefined ? median(rs.map((x) => x.redisCores!)) : undefined
    const perCore = median(rs.map((x) => x.perCore))
    const delivered = median(rs.map((x) => x.deliveredPerS))
    return `| ${b} | ${fmt(median(rs.map((x) => x.intakePerS)))} | ${fmt(delivered)} | ${median(rs.map((x) => x.routerCores)).toFixed(2)} | **${fmt(perCore)}** | ${redisCores !== undefined ? `${redisCores.toFixed(2)} (${fmt(delivered / (median(rs.map((x) => x.routerCores)) + redisCores))} incl. redis)` : '—'} | ${median(rs.map((x) => x.p50)).toFixed(1)} / ${median(rs.map((x) => x.p99)).toFixed(1)} | ${rs.every((x) => x.ok) ? 'yes' : 'NO'} |`
  })
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const md = `# Spool benchmark: intake → delivery per core

\`npm run bench:spool\` (benchmarks/spool/run.ts), ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${availableParallelism()} cores (${cpu}).
${connections} keep-alive connections posting 20-event Segment batches to \`/v1/batch\` (closed loop, load generator in its
own process), ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s measured, ${rounds} round(s) per backend, alternating; medians.
One router process per backend with one no-op destination, default delivery settings; SQLite: WAL, synchronous=NORMAL,
temp dir on the machine's disk; Redis: the local redis-server 7 (no persistence), one consumer.

*Per core* = events delivered in the window ÷ CPU-seconds the router process used in it. For Redis the server's
own CPU over the window is shown too, with the per-core figure counting both processes.

| spool | intake events/s | delivered events/s | router CPU (cores) | events/s per core | redis-server CPU (cores) | latency p50 / p99 ms | every 200'd event delivered |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Target (issue 6): sqlite ≥ 20,000 events/s per core. For comparison RudderStack publishes 350–850 events/s per core
for its Postgres-backed queue. With the durable spools the 200 is sent only after the events are stored.
`
  if (resultsFile !== '-') writeFileSync(resultsFile, md)
  process.stdout.write(md)
}

await main()
