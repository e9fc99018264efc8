// What the privacy operations cost on the delivery path: the same events through the same
// router and destinations, side by side in one process, with
//   - no privacy block (no ledger; an empty suppression list) — the baseline,
//   - a suppression list of 100 000 subjects (checked at intake, none matching),
//   - the sharing ledger in memory,
//   - the sharing ledger in SQLite (the default store),
// each round alternating between them; the median of the rounds is reported as events/s
// and as a ratio to the baseline.
//
//   node --import @swc-node/register/esm-register benchmarks/privacy/run.ts
//
// Environment: BENCH_ROUNDS (default 7), BENCH_EVENTS (per round, default 20 000),
// BENCH_OUT (default benchmarks/privacy/results.md; "-" to skip writing).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRouter, type Logger, type RouterOptions } from '../../src/index.js'
import { captureDestination } from '../../src/testing.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000)
const OUT = process.env.BENCH_OUT ?? resolve(dirname(fileURLToPath(import.meta.url)), 'results.md')
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

function event(i: number): Record<string, unknown> {
  return {
    userId: `user-${i % 5000}`,
    anonymousId: `anon-${i}`,
    event: 'Order Completed',
    properties: {
      order_id: `o-${i}`,
      revenue: 42.5,
      currency: 'EUR',
      products: [{ product_id: 'p-1', sku: 'A-1', name: 'Mug', price: 12.5, quantity: 2 }, { product_id: 'p-2', sku: 'B-2', name: 'Tea', price: 17.5, quantity: 1 }],
    },
    context: { ip: '203.0.113.77', userAgent: 'Mozilla/5.0', traits: { email: `buyer${i % 5000}@example.com` }, page: { url: 'https://shop.example/checkout' } },
  }
}

type Variant = 'baseline' | 'suppression 100k' | 'ledger (memory)' | 'ledger (sqlite)'
const VARIANTS: Variant[] = ['baseline', 'suppression 100k', 'ledger (memory)', 'ledger (sqlite)']

async function round(variant: Variant, dir: string, n: number): Promise<number> {
  const sinks = [captureDestination('sink-a'), captureDestination('sink-b'), captureDestination('sink-c')]
  for (const s of sinks) {
    // Keep memory flat: count, don't keep.
    const send = s.plugin.send
    s.plugin.send = async (batch, ctx) => void (await send.call(s.plugin, batch, ctx), s.events.splice(0), s.batches.splice(0))
  }
  const privacy: RouterOptions['privacy'] =
    variant === 'ledger (memory)' ? { store: { type: 'memory' } }
      : variant === 'ledger (sqlite)' ? { store: { type: 'sqlite', path: join(dir, `privacy-${Date.now()}-${Math.random()}.db`) } }
        : undefined
  const router = createRouter({
    logger: quiet,
    plugins: sinks.map((s) => s.plugin),
    dedup: false,
    ...(privacy ? { privacy } : {}),
    destinations: [
      { name: 'raw', type: 'sink-a', delivery: { batch: { maxEvents: 500, maxWaitMs: 5 } } },
      { name: 'hashed', type: 'sink-b', delivery: { batch: { maxEvents: 500, maxWaitMs: 5 } }, policies: [{ name: 'hash email', then: { hash: ['context.traits.email'] } }, { name: 'mask ip', then: { mask: ['context.ip'] } }] },
      { name: 'mapped', type: 'sink-c', delivery: { batch: { maxEvents: 500, maxWaitMs: 5 } }, mapping: 'on track {\n  em = sha256(event.context.traits.email)\n  value = event.properties.revenue\n  ids = map(event.properties.products, (p) => p.sku)\n}\ndefault { drop }' },
    ],
  })
  await router.ready()
  if (variant === 'suppression 100k') {
    for (let i = 0; i < 100_000; i += 1) await router.suppression.add({ userId: `gone-${i}` })
  }
  const events = Array.from({ length: n }, (_, i) => event(i))
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await router.track(events[i]!)
  router.flush()
  while (Object.values(router.stats().destinations).some((d) => d.delivered < n)) await new Promise((r) => setImmediate(r))
  await router.ledger.flush()
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  await router.close({ timeoutMs: 1000 })
  return (n / ms) * 1000
}

const dir = mkdtempSync(join(tmpdir(), 'fp-bench-privacy-'))
try {
  // Warm-up: one short round of each.
  for (const v of VARIANTS) await round(v, dir, 2000)
  const rates: Record<Variant, number[]> = { baseline: [], 'suppression 100k': [], 'ledger (memory)': [], 'ledger (sqlite)': [] }
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()
    for (const v of order) rates[v].push(await round(v, dir, EVENTS))
    process.stderr.write(`round ${r + 1}/${ROUNDS}\n`)
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const base = median(rates.baseline)
  const rows = VARIANTS.map((v) => {
    const m = median(rates[v])
    const lo = Math.min(...rates[v])
    const hi = Math.max(...rates[v])
    return `| ${v} | ${Math.round(m).toLocaleString('en')} | ${Math.round(lo).toLocaleString('en')}–${Math.round(hi).toLocaleString('en')} | ${(m / base).toFixed(2)}× |`
  })
  const report = [
    '# Privacy operations: cost on the delivery path',
    '',
    `Measured ${new Date().toISOString()} on ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
    `Command: \`node --import @swc-node/register/esm-register benchmarks/privacy/run.ts\` — ${ROUNDS} alternating rounds of ${EVENTS.toLocaleString('en')} backend \`track\` calls, each delivered to 3 destinations (as is, hashed and masked by policies, and through a DSL mapping); the time runs until every destination has every event and the ledger is written.`,
    '',
    '| variant | events/s (median) | range | vs baseline |',
    '|---|---|---|---|',
    ...rows,
    '',
    'The ledger records 3 entries per event here (one per destination), each with every field path sent.',
    '',
  ].join('\n')
  process.stdout.write(report)
  if (OUT !== '-') writeFileSync(OUT, report)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
