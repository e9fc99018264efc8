import t, { type Test } from 'tap'
import Type from 'typebox'
import { ConfigError, createRouter, defineDestination, defineSource, RetryableError, type DestinationContext, type Logger } from '../src/index.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const good = { name: 'ok-plugin', version: '1.0.0', settings: Type.Object({}), async send() {} }

/** The ConfigError `fn` throws, or a marker object that fails every match. */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return { notThrown: true }
}

function expectConfigError(t: Test, fn: () => unknown, code: string, path: string, message?: RegExp) {
  const err = thrown(fn)
  t.type(err, ConfigError)
  t.match(err, { code, path, ...(message ? { message } : {}) }, `${code} at ${path}`)
}

t.test('defineDestination returns a good definition unchanged', async (t) => {
  const def = { ...good }
  t.equal(defineDestination(def), def)
})

t.test('defineDestination rejects bad definitions with PLUGIN_INVALID and a path', async (t) => {
  const bad: Array<[string, unknown, string]> = [
    ['no name', { ...good, name: undefined }, '/name'],
    ['upper-case name', { ...good, name: 'MyPlugin' }, '/name'],
    ['name with spaces', { ...good, name: 'my plugin' }, '/name'],
    ['empty name', { ...good, name: '' }, '/name'],
    ['no version', { ...good, version: undefined }, '/version'],
    ['empty version', { ...good, version: '' }, '/version'],
    ['numeric version', { ...good, version: 1 }, '/version'],
    ['no settings', { ...good, settings: undefined }, '/settings'],
    ['settings not an object schema', { ...good, settings: Type.String() }, '/settings'],
    ['settings a plain object', { ...good, settings: { url: 'x' } }, '/settings'],
    ['no send', { ...good, send: undefined }, '/send'],
    ['send not a function', { ...good, send: 'POST' }, '/send'],
    ['consent categories not strings', { ...good, consent: { categories: [1] } }, '/consent/categories'],
    ['consent mode unknown', { ...good, consent: { categories: ['ads'], mode: 'some' } }, '/consent/mode'],
  ]
  for (const [what, def, path] of bad) {
    t.test(what, async (t) => expectConfigError(t, () => defineDestination(def as never), 'PLUGIN_INVALID', path))
  }
  expectConfigError(t, () => defineDestination(null as never), 'PLUGIN_INVALID', '')
  expectConfigError(t, () => defineDestination({ ...good, name: 'x', send: undefined } as never), 'PLUGIN_INVALID', '/send', /Plugin "x" is invalid/)
})

t.test('defineSource rejects a missing handle', async (t) => {
  expectConfigError(t, () => defineSource({ name: 'src', version: '1', settings: Type.Object({}) } as never), 'PLUGIN_INVALID', '/handle')
})

t.test('createRouter names the bad destination setting', async (t) => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['webhook without url', { type: 'webhook', settings: {} }, '/destinations/0/settings/url', /\/destinations\/0\/settings\/url: is required/],
    ['webhook url not http', { type: 'webhook', settings: { url: 'ftp://x' } }, '/destinations/0/settings/url', /\/destinations\/0\/settings\/url/],
    ['webhook method GET', { type: 'webhook', settings: { url: 'http://x', method: 'GET' } }, '/destinations/0/settings/method', /\/destinations\/0\/settings\/method/],
    ['webhook unknown option', { type: 'webhook', settings: { url: 'http://x', secret: 1 } }, '/destinations/0/settings/secret', /is not a known option/],
    ['webhook header not a string', { type: 'webhook', settings: { url: 'http://x', headers: { 'x-n': 1 } } }, '/destinations/0/settings/headers/x-n', /headers\/x-n/],
    ['file maxBytes too small', { type: 'file', settings: { maxBytes: 10 } }, '/destinations/0/settings/maxBytes', /maxBytes/],
    ['console unknown stream', { type: 'console', settings: { stream: 'stdlog' } }, '/destinations/0/settings/stream', /stream/],
  ]
  for (const [what, d, path, message] of cases) {
    t.test(what, async (t) =>
      expectConfigError(t, () => createRouter({ logger: quiet, destinations: [{ name: 'd', ...(d as object) } as never] }), 'CONFIG_INVALID', path, message),
    )
  }
  t.test('the index is the entry\'s', async (t) => {
    expectConfigError(
      t,
      () => createRouter({ logger: quiet, destinations: [{ name: 'fine', type: 'console' }, { name: 'bad', type: 'webhook', settings: {} }] }),
      'CONFIG_INVALID',
      '/destinations/1/settings/url',
      /destination "bad"/,
    )
  })
})

t.test('an unknown plugin type is CONFIG_UNKNOWN_PLUGIN naming /destinations/0/type', async (t) => {
  expectConfigError(t, () => createRouter({ logger: quiet, destinations: [{ name: 'x', type: 'segment-cloud' }] }), 'CONFIG_UNKNOWN_PLUGIN', '/destinations/0/type', /segment-cloud/)
})

t.test('two destinations with one name are refused', async (t) => {
  expectConfigError(
    t,
    () => createRouter({ logger: quiet, destinations: [{ name: 'x', type: 'console' }, { name: 'x', type: 'console' }] }),
    'CONFIG_DUPLICATE_NAME',
    '/destinations/1/name',
  )
})

t.test('send gets a context: validated settings with defaults, state from setup, attempt, signal', async (t) => {
  const seen: Array<Pick<DestinationContext, 'settings' | 'attempt' | 'destination' | 'state'> & { aborted: boolean }> = []
  const p = defineDestination({
    name: 'ctx-probe',
    version: '1.0.0',
    settings: Type.Object({ region: Type.String({ default: 'eu' }), key: Type.String() }),
    setup(ctx) {
      ctx.state.client = `client:${ctx.settings.key}`
    },
    async send(_events, ctx) {
      seen.push({ settings: ctx.settings, attempt: ctx.attempt, destination: ctx.destination, state: { ...ctx.state }, aborted: ctx.signal.aborted })
      if (ctx.attempt === 1) throw new RetryableError('once')
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [p],
    destinations: [{ name: 'probe', type: 'ctx-probe', settings: { key: 'k1' }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 5, maxDelayMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.stats().destinations.probe!.delivered === 1, 'delivery')
  t.same(seen, [
    { settings: { region: 'eu', key: 'k1' }, attempt: 1, destination: 'probe', state: { client: 'client:k1' }, aborted: false },
    { settings: { region: 'eu', key: 'k1' }, attempt: 2, destination: 'probe', state: { client: 'client:k1' }, aborted: false },
  ])
})

t.test('a plugin passed directly as `type` works without registering it', async (t) => {
  let sent = 0
  const p = defineDestination({ name: 'inline', version: '1.0.0', settings: Type.Object({}), async send(e) { sent += e.length } })
  const router = createRouter({ logger: quiet, destinations: [{ name: 'i', type: p as never, delivery: { batch: { maxWaitMs: 5 } } }] })
  await router.track({ userId: 'u', event: 'E' })
  await router.close({ timeoutMs: 1000 })
  t.equal(sent, 1)
})

t.test('a failing setup makes sends fail and retry, not crash; setup is tried again', async (t) => {
  let setups = 0
  let sends = 0
  const errors: string[] = []
  const logger: Logger = { ...quiet, error: (o, m) => void errors.push(`${m} ${JSON.stringify(o)}`) }
  const p = defineDestination({
    name: 'flaky-setup',
    version: '1.0.0',
    settings: Type.Object({}),
    async setup() {
      setups++
      if (setups <= 2) throw new Error(`cannot connect (${setups})`)
    },
    async send() {
      sends++
    },
  })
  const router = createRouter({
    logger,
    plugins: [p],
    destinations: [{ name: 'f', type: 'flaky-setup', delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 5, maxDelayMs: 10 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const retries: Array<{ message: string }> = []
  router.events.on('retry', (e: { message: string }) => retries.push(e))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.stats().destinations.f!.delivered === 1, 'delivery after setup recovers')
  t.equal(setups, 3, 'setup ran until it succeeded')
  t.equal(sends, 1, 'send ran only once setup had succeeded')
  t.ok(retries.length >= 1, 'the send was retried')
  t.match(retries[0]!.message, /cannot connect/)
  t.ok(errors.some((e) => /destination setup failed/.test(e)), 'the setup failure is logged')
})

t.test('a setup that always fails ends in dead letters with its message', async (t) => {
  const p = defineDestination({
    name: 'no-setup',
    version: '1.0.0',
    settings: Type.Object({}),
    setup() {
      throw new Error('bad credentials file')
    },
    async send() {},
  })
  const router = createRouter({
    logger: quiet,
    plugins: [p],
    destinations: [{ name: 'n', type: 'no-setup', delivery: { batch: { maxWaitMs: 5 }, retry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.deadLetters.count() === 1, 'dead letter')
  t.match(router.deadLetters.list()[0]!.error, { code: 'DELIVERY_MAX_ATTEMPTS', message: /bad credentials file/ })
})

t.test('a send that throws synchronously is a failed send, not a crash', async (t) => {
  const p = defineDestination({
    name: 'sync-throw',
    version: '1.0.0',
    settings: Type.Object({}),
    send() {
      throw new Error('boom')
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [p],
    destinations: [{ name: 's', type: 'sync-throw', delivery: { batch: { maxWaitMs: 5 }, retry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.deadLetters.count() === 1, 'dead letter')
  t.match(router.deadLetters.list()[0]!.error.message, /boom/)
})
