/**
 * The demo (`npm start`) end to end: the real server as a child process on a free port,
 * with a temporary config whose file sink writes into a temp dir.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRouter, loadConfig } from '../src/index.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SERVER = join(ROOT, 'examples/shop/server.ts')
const WRITE_KEY = 'test-write-key'
const ORIGIN = 'http://shop.test'
const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`

interface Demo {
  url: string
  child: ChildProcess
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  output: () => string
}

/** Start `examples/shop/server.ts` with PORT=0 and read its URL from the start-up line. */
async function startDemo(env: Record<string, string>): Promise<Demo> {
  const child = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', SERVER], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start within 60 s:\n${out}`)), 60_000)
    const check = () => {
      const m = /demo shop on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', check)
    void exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited (${code ?? signal}) before listening:\n${out}`))
    })
  })
  return { url, child, exit, output: () => out }
}

async function readEvents(file: string): Promise<Array<Record<string, any>>> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>)
}

async function waitForEvent(file: string, pred: (e: Record<string, any>) => boolean, ms = 5000): Promise<Record<string, any> | undefined> {
  const until = Date.now() + ms
  for (;;) {
    const hit = (await readEvents(file)).find(pred)
    if (hit || Date.now() > until) return hit
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('the repo config loads: web source, file sink under ./data, console disabled', async (t) => {
  const config = await loadConfig(join(ROOT, 'firstparty.config.yaml'), { PORT: '4321' })
  const web = config.sources?.find((s) => s.name === 'web')
  t.equal(web?.writeKey, 'demo-write-key')
  t.ok(web?.allowedOrigins?.includes('http://localhost:4321'), 'allowed origins follow PORT')
  const file = config.destinations?.find((d) => d.type === 'file')
  t.match(file?.settings, { path: './data/events.ndjson' })
  t.equal(config.destinations?.find((d) => d.type === 'console')?.enabled, false)
  const custom = await loadConfig(join(ROOT, 'firstparty.config.yaml'), { FIRSTPARTY_WRITE_KEY: 'k2' })
  t.equal(custom.sources?.[0]?.writeKey, 'k2', 'FIRSTPARTY_WRITE_KEY overrides the key')
  t.equal(custom.sources?.[0]?.allowedOrigins?.[0], 'http://localhost:3000')
  // The router accepts it (plugin settings are validated at creation).
  const router = createRouter({ ...config, logLevel: 'silent' })
  await router.close({ timeoutMs: 100 })
})

t.test('npm start: Segment batch, browser event, 401, backend purchase, graceful SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sink = join(dir, 'events.ndjson')
  const configFile = join(dir, 'config.yaml')
  await writeFile(configFile, [
    'sources:',
    '  - name: web',
    '    writeKey: ${TEST_WRITE_KEY}',
    `    allowedOrigins: ['${ORIGIN}']`,
    'destinations:',
    '  - name: sink',
    '    type: file',
    `    settings: { path: ${JSON.stringify(sink)} }`,
    '    delivery: { batch: { maxWaitMs: 100 } }',
    'shutdownTimeoutMs: 3000',
    `privacy: { store: { type: sqlite, path: ${JSON.stringify(join(dir, 'privacy.db'))} } }`,
    '',
  ].join('\n'))

  const demo = await startDemo({ FIRSTPARTY_CONFIG: configFile, TEST_WRITE_KEY: WRITE_KEY })
  t.teardown(() => {
    if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill('SIGKILL')
  })
  t.match(demo.output(), configFile, 'the start-up line names the config file')
  t.match(demo.output(), /destinations: sink \(file/, 'and the destinations')

  // Segment server-side batch with Basic auth (what `curl -u key:` sends).
  const batch = await fetch(`${demo.url}/v1/batch`, {
    method: 'POST',
    headers: { authorization: basic(WRITE_KEY), 'content-type': 'application/json' },
    body: JSON.stringify({ batch: [{ type: 'track', event: 'Test', userId: 'u1', messageId: 'demo-test-1' }] }),
  })
  t.equal(batch.status, 200)
  t.same(await batch.json(), { success: true })
  const landed = await waitForEvent(sink, (e) => e.messageId === 'demo-test-1')
  t.match(landed, { type: 'track', event: 'Test', userId: 'u1' }, 'the batch lands in the file sink')

  // Unknown write key: 401 with a JSON error.
  const bad = await fetch(`${demo.url}/v1/batch`, {
    method: 'POST',
    headers: { authorization: basic('not-a-key'), 'content-type': 'application/json' },
    body: JSON.stringify({ batch: [{ type: 'track', event: 'Test', userId: 'u1' }] }),
  })
  t.equal(bad.status, 401)
  t.match(bad.headers.get('content-type'), /application\/json/)
  t.match(await bad.json(), { code: 'unknown_write_key', message: String })

  // The page's client: text/plain, writeKey in the body, from an allowed origin.
  const browser = await fetch(`${demo.url}/v1/t`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', origin: ORIGIN },
    body: JSON.stringify({ writeKey: WRITE_KEY, event: 'Product Added', anonymousId: 'anon-demo', messageId: 'demo-test-2', properties: { product_id: 'p-1001', price: 24, quantity: 1 } }),
  })
  t.equal(browser.status, 200)
  t.equal(browser.headers.get('access-control-allow-origin'), ORIGIN)
  t.match(await waitForEvent(sink, (e) => e.messageId === 'demo-test-2'), { type: 'track', event: 'Product Added', anonymousId: 'anon-demo' })

  // The shop page and its scripts are served, with the write key from the config.
  const page = await fetch(demo.url)
  t.equal(page.status, 200)
  t.match(page.headers.get('set-cookie'), /^ajs_anonymous_id=[0-9a-f-]{36}; Max-Age=31536000; Path=\/; .*SameSite=Lax/i, 'the server issues the first-party id cookie')
  t.match(await page.text(), /<script src="\/track\.js"><\/script>/)
  t.match(await (await fetch(`${demo.url}/config.js`)).text(), JSON.stringify(WRITE_KEY))
  t.equal((await fetch(`${demo.url}/track.js`)).status, 200)

  // "Purchase": the backend records the order and sends Order Completed server-side,
  // with the anonymousId from the first-party cookie.
  const purchase = await fetch(`${demo.url}/api/purchase`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: 'ajs_anonymous_id=anon-demo; other=1' },
    body: JSON.stringify({ items: [{ product_id: 'p-1001', quantity: 2 }, { product_id: 'p-1002', quantity: 1 }] }),
  })
  t.equal(purchase.status, 201)
  const { order, messageId } = (await purchase.json()) as { order: { order_id: string; revenue: number }; messageId: string }
  t.equal(order.revenue, 64.5, 'revenue from server-side prices')
  const completed = await waitForEvent(sink, (e) => e.event === 'Order Completed' && e.properties?.order_id === order.order_id)
  t.match(completed, {
    type: 'track',
    messageId,
    anonymousId: 'anon-demo',
    properties: {
      order_id: order.order_id,
      revenue: 64.5,
      currency: 'USD',
      products: [{ product_id: 'p-1001', quantity: 2, price: 24 }, { product_id: 'p-1002', quantity: 1, price: 16.5 }],
    },
  }, 'the backend event lands in the file sink')

  const invalid = await fetch(`${demo.url}/api/purchase`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"items":[{"product_id":"nope"}]}' })
  t.equal(invalid.status, 400)
  t.match(await invalid.json(), { code: 'invalid_order' })

  // What went where.
  const stats = (await (await fetch(`${demo.url}/api/stats`)).json()) as { accepted: number; rejected: Record<string, number>; destinations: Record<string, { delivered: number }> }
  t.equal(stats.accepted, 3)
  t.equal(stats.rejected.unknown_write_key, 1)
  t.equal(stats.destinations.sink?.delivered, 3)
  t.match(await (await fetch(`${demo.url}/api/dead-letters`)).json(), { count: 0, deadLetters: [] })

  // The visitor's own privacy page: what was shared about me, then "forget me".
  const visitor = { cookie: 'ajs_anonymous_id=anon-demo' }
  const mine = (await (await fetch(`${demo.url}/api/privacy/my-data`, { headers: visitor })).json()) as { shared: Array<{ destination: string; event: string; fields: Array<{ path: string }> }> }
  t.match(mine.shared, [{ destination: 'sink', event: 'Order Completed' }], 'the ledger lists the order event sent to the sink')
  t.ok(mine.shared[0]?.fields.some((f) => f.path === 'properties.products[].sku'), 'with the paths sent')
  const forget = await fetch(`${demo.url}/api/privacy/forget-me`, { method: 'POST', headers: visitor })
  t.equal(forget.status, 200)
  t.match(await forget.json(), { receipts: [{ target: 'firstparty', status: 'succeeded' }, { target: 'sink', status: 'succeeded' }] })
  t.notOk((await readEvents(sink)).some((e) => e.anonymousId === 'anon-demo'), "the file sink no longer holds the visitor's events")
  t.match(await (await fetch(`${demo.url}/api/privacy/my-data`, { headers: visitor })).json(), { shared: [] })
  t.match(await (await fetch(`${demo.url}/api/privacy/my-data`)).json(), { code: 'no_visitor' }, 'no cookie: a JSON error that says what to do')

  // An event accepted just before SIGTERM is still delivered: close() drains.
  const last = await fetch(`${demo.url}/v1/track`, {
    method: 'POST',
    headers: { authorization: basic(WRITE_KEY), 'content-type': 'application/json' },
    body: JSON.stringify({ event: 'Last', userId: 'u1', messageId: 'demo-test-last' }),
  })
  t.equal(last.status, 200)
  demo.child.kill('SIGTERM')
  const { code, signal } = await demo.exit
  t.equal(signal, null, 'not killed by the signal')
  t.equal(code, 0, 'exits 0 after router.close()')
  t.ok((await readEvents(sink)).some((e) => e.messageId === 'demo-test-last'), 'the last event was drained to the sink before exit')
  t.match(demo.output(), /stopped · accepted 4/)
})
