import t from 'tap'
import { createRouter, VERSION, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A logger that keeps every line, at every level. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (obj: object, msg?: string) => void lines.push(JSON.stringify({ level, ...obj, msg }))
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

t.test('batch mode: POST {batch, sentAt} as JSON', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({ logger: quiet, destinations: [{ name: 'hook', type: 'webhook', settings: { url: `${server.url}/ingest?k=1` }, delivery: { batch: { maxEvents: 3, maxWaitMs: 60_000 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await router.track({ userId: 'u1', event: 'Order Completed', properties: { i } })).messageId)
  const [req] = await server.waitFor(1)
  t.equal(req!.method, 'POST')
  t.equal(req!.url, '/ingest?k=1')
  t.match(req!.headers['content-type'], /^application\/json/)
  t.equal(req!.headers['user-agent'], `firstparty/${VERSION}`)
  const body = req!.json as { batch: Array<Record<string, unknown>>; sentAt: string }
  t.same(Object.keys(body).sort(), ['batch', 'sentAt'])
  t.ok(!Number.isNaN(Date.parse(body.sentAt)), 'sentAt is a date')
  t.same(body.batch.map((e) => e.messageId), ids)
  t.match(body.batch[0], { type: 'track', event: 'Order Completed', userId: 'u1', properties: { i: 0 } })
})

t.test('event mode: one request per event, the body is the event', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({ logger: quiet, destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url, mode: 'event' }, delivery: { batch: { maxEvents: 3, maxWaitMs: 60_000 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await router.identify({ userId: `u${i}`, traits: { plan: 'pro' } })).messageId)
  const reqs = await server.waitFor(3)
  t.equal(reqs.length, 3)
  t.same(reqs.map((r) => (r.json as { messageId: string }).messageId).sort(), [...ids].sort())
  for (const r of reqs) t.match(r.json, { type: 'identify', traits: { plan: 'pro' } })
  t.notOk(reqs.some((r) => 'batch' in (r.json as object)), 'no envelope')
  await until(() => router.stats().destinations.hook!.delivered === 3, 'delivered')
  t.equal(router.stats().destinations.hook!.batches, 1, 'one send call for the three requests')
})

for (const method of ['PUT', 'PATCH'] as const) {
  t.test(`method ${method}`, async (t) => {
    const server = await startTestServer()
    t.teardown(() => server.close())
    const router = createRouter({ logger: quiet, destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url, method }, delivery: { batch: { maxWaitMs: 5 } } }] })
    t.teardown(() => router.close({ timeoutMs: 100 }))
    await router.track({ userId: 'u', event: 'E' })
    const [req] = await server.waitFor(1)
    t.equal(req!.method, method)
    t.equal((req!.json as { batch: unknown[] }).batch.length, 1)
  })
}

t.test('headers are sent, and their values never reach a log line', async (t) => {
  const secret = 'Bearer s3cr3t-t0ken-value'
  const other = 'x-other-secret-42'
  const server = await startTestServer()
  t.teardown(() => server.close())
  // A retry, an auth failure and a permanent failure: every code path that logs.
  server.script({ status: 503 }, { status: 401 }, { status: 400 })
  const logger = recordingLogger()
  const router = createRouter({
    logger,
    destinations: [{
      name: 'hook', type: 'webhook',
      settings: { url: server.url, headers: { authorization: secret, 'x-api-key': other } },
      delivery: { batch: { maxEvents: 1, maxWaitMs: 5 }, concurrency: 1, retry: { minDelayMs: 5, maxDelayMs: 5 } },
    }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'A' })
  await router.track({ userId: 'u', event: 'B' })
  await router.track({ userId: 'u', event: 'C' })
  await until(() => router.stats().destinations.hook!.held === 0, 'settled')
  t.ok(server.requests.length >= 4)
  for (const r of server.requests) {
    t.equal(r.headers.authorization, secret)
    t.equal(r.headers['x-api-key'], other)
  }
  t.ok(logger.lines.length >= 3, `the failures were logged (${logger.lines.length} lines)`)
  t.ok(logger.lines.some((l) => /retrying/.test(l)) && logger.lines.some((l) => /dead-lettered/.test(l)), 'retries and dead letters are logged')
  for (const l of logger.lines) {
    t.notMatch(l, /s3cr3t/, 'no header value in the log')
    t.notMatch(l, /x-other-secret-42/, 'no header value in the log')
  }
  for (const d of router.deadLetters.list()) t.notMatch(JSON.stringify(d), /s3cr3t|x-other-secret/, 'nor in a dead letter')
})
