import t from 'tap'
import { createRouter, type Logger } from '../src/index.js'
import { captureDestination, startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function setup(t: { teardown(fn: () => unknown): void }) {
  const a = captureDestination('sink-a')
  const b = captureDestination('sink-b')
  const router = createRouter({
    logger: quiet,
    plugins: [a.plugin, b.plugin],
    destinations: [
      { name: 'hook', type: 'sink-a', delivery: { batch: { maxWaitMs: 5 } } },
      { name: 'Other Tool', type: 'sink-b', delivery: { batch: { maxWaitMs: 5 } } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  return { a, b, router }
}

const cases: Array<{ name: string; integrations: Record<string, unknown>; hook: boolean; other: boolean }> = [
  { name: 'no switches', integrations: {}, hook: true, other: true },
  { name: 'All: false, hook: true → only hook', integrations: { All: false, hook: true }, hook: true, other: false },
  { name: 'hook: false → everyone else', integrations: { hook: false }, hook: false, other: true },
  { name: 'All: false alone → nobody', integrations: { All: false }, hook: false, other: false },
  { name: 'matched by plugin name', integrations: { All: false, 'sink-b': true }, hook: false, other: true },
  { name: 'plugin name switched off', integrations: { 'sink-a': false }, hook: false, other: true },
  { name: 'names are matched case-insensitively', integrations: { All: false, 'other tool': true }, hook: false, other: true },
  { name: 'the destination name wins over the plugin name', integrations: { 'sink-a': false, hook: true }, hook: true, other: true },
  { name: 'an options object switches on (Segment passes settings this way)', integrations: { All: false, hook: { apiKey: 'x' } }, hook: true, other: false },
  { name: 'lower-case all: false', integrations: { all: false, hook: true }, hook: true, other: false },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { a, b, router } = await setup(t)
    await router.track({ userId: 'u', event: 'Switched', integrations: c.integrations })
    await router.track({ userId: 'u', event: 'Plain' })
    await router.close({ timeoutMs: 1000 })
    t.same(a.events.map((e) => e.event), c.hook ? ['Switched', 'Plain'] : ['Plain'], 'hook')
    t.same(b.events.map((e) => e.event), c.other ? ['Switched', 'Plain'] : ['Plain'], 'Other Tool')
    const s = router.stats().destinations
    t.equal(s.hook!.filtered, c.hook ? 0 : 1, 'hook filtered count')
    t.equal(s['Other Tool']!.filtered, c.other ? 0 : 1, 'Other Tool filtered count')
    t.equal(s.hook!.enqueued + s.hook!.filtered, 2)
    t.equal(router.deadLetters.count(), 0, 'a filtered event is not a dead letter')
  })
}

t.test('integrations on a webhook destination: matched by its plugin name "webhook"', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({ logger: quiet, destinations: [{ name: 'my-hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'Off', integrations: { webhook: false } })
  await router.track({ userId: 'u', event: 'On', integrations: { All: false, Webhook: true } })
  await router.close({ timeoutMs: 1000 })
  const events = server.requests.flatMap((r) => (r.json as { batch: Array<{ event: string }> }).batch.map((e) => e.event))
  t.same(events, ['On'])
  t.equal(router.stats().destinations['my-hook']!.filtered, 1)
})
