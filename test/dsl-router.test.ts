// Mappings in the router: compiled at createRouter, applied per destination after
// consent, policies and the PII sweep, over real HTTP to a webhook.
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Type from 'typebox'
import { ConfigError, createRouter, defineDestination, loadConfig, type Logger } from '../src/index.js'
import { captureDestination, startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const capi = readFileSync(new URL('../dsl/examples/meta-capi.fp', import.meta.url), 'utf8')

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('a webhook with a mapping receives mapped payloads over HTTP; drops are counted', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'capi', type: 'webhook', settings: { url: server.url }, mapping: capi, delivery: { batch: { maxEvents: 2, maxWaitMs: 60_000 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const { messageId } = await router.track({
    userId: 'u1', event: 'Order Completed',
    context: { traits: { email: 'Jane@Example.com' }, page: { url: 'https://s.example/' } },
    properties: { revenue: 30, currency: 'usd', products: [{ product_id: 'p1', price: 10, quantity: 3 }] },
  })
  await router.identify({ userId: 'u1', traits: { plan: 'pro' } }) // no rule, default drops
  await router.page({ userId: 'u1', name: 'Home', context: { page: { url: 'https://s.example/home' } } })
  const [req] = await server.waitFor(1)
  const batch = (req!.json as { batch: Array<Record<string, any>> }).batch
  t.equal(batch.length, 2)
  t.match(batch[0], {
    event_name: 'Purchase',
    event_id: messageId,
    action_source: 'website',
    user_data: { em: [sha('jane@example.com')], external_id: [sha('u1')] },
    custom_data: { value: 30, currency: 'USD', content_ids: ['p1'], num_items: 3 },
  })
  t.notOk('type' in batch[0]!, 'the payload is the mapping output, not the event')
  t.match(batch[1], { event_name: 'PageView', event_source_url: 'https://s.example/home' })
  const stats = router.stats().destinations.capi!
  t.equal(stats.filteredBy.mapping, 1, 'the identify was dropped by the mapping')
  t.equal(stats.filtered, 1)
})

t.test('the mapping runs after destination policies and sees their result', async (t) => {
  const cap = captureDestination()
  const router = createRouter({
    logger: quiet,
    plugins: [cap.plugin],
    destinations: [{
      name: 'c', type: 'capture',
      policies: [{ then: { set: [{ path: 'properties.stage', value: 'policy' }] } }, { when: { '==': [{ var: 'event' }, 'Blocked'] }, then: 'drop' }],
      mapping: 'on track { stage = event.properties.stage; name = event.event }',
    }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'Blocked' })
  await router.track({ userId: 'u', event: 'Fine' })
  router.flush()
  const [ev] = await cap.waitFor(1)
  t.same(ev, { stage: 'policy', name: 'Fine' })
  t.same(router.stats().destinations.c!.filteredBy, { policy: 1 })
})

t.test('evaluate() shows the mapped output and a mapping drop, and counts nothing', async (t) => {
  const router = createRouter({
    logger: quiet,
    destinations: [
      { name: 'capi', type: 'webhook', settings: { url: 'http://127.0.0.1:9/' }, mapping: capi },
      { name: 'raw', type: 'webhook', settings: { url: 'http://127.0.0.1:9/' } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const r = router.evaluate({ type: 'track', event: 'Signed Up', userId: 'u9', messageId: 'mm' })
  const capiResult = r.destinations.capi!
  t.ok(capiResult.delivered)
  if (capiResult.delivered) t.match(capiResult.event, { event_name: 'CompleteRegistration', event_id: 'mm' })
  t.match(capiResult.trace.actions, [{ rule: 'mapping', action: 'map' }])
  const raw = r.destinations.raw!
  if (raw.delivered) t.equal(raw.event.type, 'track', 'a destination without mapping gets the event')
  const dropped = router.evaluate({ type: 'identify', userId: 'u9' }).destinations.capi!
  t.same({ delivered: dropped.delivered, reason: !dropped.delivered && dropped.reason, droppedBy: dropped.trace.droppedBy }, { delivered: false, reason: 'mapping', droppedBy: 'mapping' })
  t.equal(router.stats().destinations.capi!.filtered, 0)
})

t.test('a compile error is a ConfigError naming /destinations/N/mapping and line:column', async (t) => {
  const err = t.throws(() => createRouter({
    logger: quiet,
    destinations: [
      { name: 'ok', type: 'webhook', settings: { url: 'http://127.0.0.1:9/' } },
      { name: 'bad', type: 'webhook', settings: { url: 'http://127.0.0.1:9/' }, mapping: 'on track {\n  a = lowr(event.x)\n  b = = 1\n}' },
    ],
  })) as ConfigError
  t.ok(err instanceof ConfigError)
  t.equal(err.code, 'CONFIG_INVALID')
  t.equal(err.path, '/destinations/1/mapping')
  t.equal(err.issues.length, 2, 'every error, not just the first')
  t.match(err.issues[0]!.message, /^2:7 DSL_T101 unknown function "lowr"/)
  t.match(err.issues[1]!.message, /^3:7 DSL_S202/)
  t.match(err.message, /\^\^\^\^/, 'with the caret excerpt')
})

t.test("a plugin's mapping is its default; config mapping overrides; false turns it off", async (t) => {
  const sent: unknown[] = []
  const plugin = defineDestination({
    name: 'vendor', version: '1.0.0', settings: Type.Object({}),
    mapping: 'on any { vendor_event = event.event ?? event.type }',
    async send(events) { sent.push(...events) },
  })
  const make = (extra: Record<string, unknown>) =>
    createRouter({ logger: quiet, plugins: [plugin], destinations: [{ name: 'v', type: 'vendor', delivery: { batch: { maxWaitMs: 0 } }, ...extra }] })
  for (const [extra, want] of [
    [{}, { vendor_event: 'Clicked' }],
    [{ mapping: 'on track { overridden = true }' }, { overridden: true }],
    [{ mapping: false }, null],
  ] as const) {
    sent.length = 0
    const router = make(extra)
    await router.track({ userId: 'u', event: 'Clicked' })
    router.flush()
    await until(() => sent.length === 1, 'a send')
    if (want === null) t.match(sent[0], { type: 'track', event: 'Clicked' }, 'mapping: false sends the event')
    else t.same(sent[0], want)
    await router.close({ timeoutMs: 100 })
  }
})

t.test('mappingFile is read relative to the config file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-map-'))
  writeFileSync(join(dir, 'm.fp'), 'on track { e = upper(event.event) }')
  writeFileSync(join(dir, 'config.yaml'), 'destinations:\n  - name: hook\n    type: webhook\n    settings: { url: "http://127.0.0.1:9/" }\n    mappingFile: m.fp\n')
  const config = await loadConfig(join(dir, 'config.yaml'))
  const router = createRouter({ ...config, logger: quiet })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const r = router.evaluate({ type: 'track', event: 'abc', userId: 'u' }).destinations.hook!
  t.same(r.delivered && r.event, { e: 'ABC' })

  writeFileSync(join(dir, 'm.fp'), 'on track { e = }')
  const err = await loadConfig(join(dir, 'config.yaml')).then((c) => createRouter({ ...c, logger: quiet })).then(() => null, (e: unknown) => e as ConfigError)
  t.equal(err?.path, '/destinations/0/mappingFile')
  t.match(err?.message, /1:16 DSL_S202/)
})

t.test('an event over a run-time limit is not sent; the rest are', async (t) => {
  const cap = captureDestination()
  const lines: string[] = []
  const logger: Logger = { debug() {}, info() {}, warn: (o, m) => void lines.push(`${m} ${JSON.stringify(o)}`), error() {} }
  const router = createRouter({
    logger,
    plugins: [cap.plugin],
    destinations: [{ name: 'c', type: 'capture', mapping: 'on track { pairs = map(event.properties.l, a => map(event.properties.l, b => a * b)) }' }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const big = Array.from({ length: 400 }, (_, i) => i) // 160,000 steps > 100,000
  await router.track({ userId: 'u', event: 'x', properties: { l: big } })
  await router.track({ userId: 'u', event: 'x', properties: { l: [1, 2] } })
  router.flush()
  const [ev] = await cap.waitFor(1)
  t.same(ev, { pairs: [[1, 2], [2, 4]] })
  t.equal(router.stats().destinations.c!.filteredBy.mapping, 1)
  t.match(lines.join('\n'), /DSL_R103/)
})
