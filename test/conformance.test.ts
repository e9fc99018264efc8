// The conformance suite itself: a good plugin passes every check, and each kind of
// broken plugin fails the check meant to catch it. The suite runs against a recorder
// that stands in for tap's `t`, so a failure here is data, not a failed test.
import http from 'node:http'
import t, { type Test } from 'tap'
import Type from 'typebox'
import got from 'got'
import { defineDestination, PermanentError, RetryableError, type DestinationDefinition } from '../src/index.js'
import { runDestinationConformance, type ConformanceOptions, type ConformanceTest } from '../src/testing.js'

interface Recorded {
  failures: string[]
  skipped: string[]
  passes: number
}

/** A ConformanceTest that records instead of reporting; subtests run in order. */
function recorder(out: Recorded = { failures: [], skipped: [], passes: 0 }, path = ''): ConformanceTest & { out: Recorded; runTeardowns(): Promise<void> } {
  const teardowns: Array<() => unknown> = []
  const assert = (ok: boolean, message: string | undefined) => {
    if (ok) out.passes++
    else out.failures.push(`${path} > ${message ?? '(no message)'}`)
  }
  const rec = {
    out,
    async test(name: string, a: unknown, b?: unknown) {
      const fn = (typeof a === 'function' ? a : b) as (t: ConformanceTest) => Promise<void> | void
      const opts = (typeof a === 'function' ? {} : a) as { skip?: string | boolean }
      if (opts.skip) return void out.skipped.push(`${path}/${name}`)
      const child = recorder(out, `${path}/${name}`)
      try {
        await fn(child)
      } catch (err) {
        out.failures.push(`${path}/${name} threw: ${(err as Error).message}`)
      } finally {
        await child.runTeardowns()
      }
    },
    ok: (v: unknown, m?: string) => assert(!!v, m),
    equal: (a: unknown, b: unknown, m?: string) => assert(a === b, `${m ?? ''} (${JSON.stringify(a)} !== ${JSON.stringify(b)})`),
    same: (a: unknown, b: unknown, m?: string) => assert(t.same.length >= 0 && JSON.stringify(a) === JSON.stringify(b), `${m ?? ''} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`),
    match: (a: unknown, b: unknown, m?: string) => assert(a !== undefined && Object.entries(b as object).every(([k, v]) => (a as Record<string, unknown>)[k] === v), m),
    fail: (m?: string) => assert(false, m),
    comment: () => {},
    teardown: (fn: () => unknown) => void teardowns.push(fn),
    async runTeardowns() {
      for (const fn of teardowns.reverse()) await fn()
    },
  }
  return rec as unknown as ConformanceTest & { out: Recorded; runTeardowns(): Promise<void> }
}

/** A well-behaved plugin: POST { events } to its endpoint through ctx.http. */
function goodPlugin(overrides: Partial<DestinationDefinition> = {}): DestinationDefinition {
  return defineDestination({
    name: 'good',
    version: '1.0.0',
    settings: Type.Object({ url: Type.String({ default: 'https://vendor.example/v1/events', description: 'Endpoint.' }) }),
    batch: { maxEvents: 10 },
    mapping: 'on track { name = event.event; id = event.messageId }\ndefault { drop }',
    async send(events, ctx) {
      for (let i = 0; i < events.length; i += 5) {
        await ctx.http.post((ctx.settings as { url: string }).url, { json: { events: events.slice(i, i + 5) }, signal: ctx.signal })
      }
    },
    ...overrides,
  } as DestinationDefinition) as unknown as DestinationDefinition
}

const examples: ConformanceOptions['examples'] = [
  { in: { type: 'track', event: 'Bought', messageId: 'm-1' }, out: { events: [{ name: 'Bought', id: 'm-1' }] }, request: { method: 'POST', url: 'https://vendor.example/v1/events' } },
  { in: { type: 'identify', messageId: 'm-2', userId: 'u' }, out: null },
]

async function run(plugin: DestinationDefinition, extra: Partial<ConformanceOptions> = {}): Promise<Recorded> {
  const r = recorder()
  await runDestinationConformance(r, { plugin, settings: {}, examples, vendor: { maxEventsPerRequest: 5 }, ...extra })
  return r.out
}

t.test('a well-behaved plugin passes every check', async (t) => {
  const r = await run(goodPlugin())
  t.same(r.failures, [])
  t.ok(r.passes > 20, `${r.passes} assertions passed`)
})

t.test('skip: a check can be skipped with a reason', async (t) => {
  const r = await run(goodPlugin(), { skip: { 'retry-after': 'slow', io: 'uses a database' } })
  t.same(r.failures, [])
  t.same(r.skipped.map((s) => s.split(':')[0]), ['/retry-after', '/io'])
})

const failing = (r: Recorded, check: string) => r.failures.filter((f) => f.startsWith(`/${check}:`))
/** Every pattern matches some failure of `check`, and `check` is the only check that failed. */
function fails(t: Test, r: Recorded, check: string, ...patterns: RegExp[]): void {
  const [name, ...alsoFailing] = check.split(' ')
  const f = failing(r, name!)
  for (const p of patterns) t.ok(f.some((m) => p.test(m)), `${name} fails with ${p}`)
  const others = r.failures.filter((m) => ![name, ...alsoFailing].some((c) => m.startsWith(`/${c}:`)))
  t.same(others, [], `no other check fails${alsoFailing.length ? ` but ${alsoFailing.join(', ')}` : ''}`)
}

/** Five events per request, as the vendor in these tests wants. */
async function inFives(events: ReadonlyArray<unknown>, post: (chunk: unknown[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < events.length; i += 5) await post(events.slice(i, i + 5))
}

t.test('schema: a setting without a description fails', async (t) => {
  const r = await run(goodPlugin({ settings: Type.Object({ url: Type.String({ default: 'https://vendor.example/v1/events' }) }) }))
  fails(t, r, 'schema', /setting "url" has a description/)
})

t.test('mapping: a default mapping with a warning fails', async (t) => {
  const r = await run(goodPlugin({ mapping: 'on track { name = event.event; id = event.messageId; let unused = 1 }\ndefault { drop }' }))
  fails(t, r, 'mapping', /no warnings/)
})

t.test('examples: a wrong out fails, naming the example', async (t) => {
  const r = await run(goodPlugin({ mapping: 'on track { name = upper(event.event); id = event.messageId }\ndefault { drop }' }))
  fails(t, r, 'examples', /example 1: track "Bought" > the vendor receives out/)
})

t.test('errors: a plugin that swallows vendor errors fails', async (t) => {
  const r = await run(goodPlugin({
    async send(events, ctx) {
      await ctx.http.post('https://vendor.example/v1/events', { json: { events }, signal: ctx.signal, throwHttpErrors: false })
    },
  }), { skip: { 'retry-after': 'fails too, slowly' } })
  t.ok(failing(r, 'errors').some((m) => /send fails on 500/.test(m)), 'errors fails')
  t.ok(failing(r, 'errors').some((m) => /send fails on 401/.test(m)), 'errors fails on auth too')
})

t.test('errors: a plugin that calls everything permanent fails on 5xx and 429', async (t) => {
  const r = await run(goodPlugin({
    async send(events, ctx) {
      await inFives(events, (chunk) =>
        ctx.http.post('https://vendor.example/v1/events', { json: { events: chunk }, signal: ctx.signal }).catch((err: Error) => {
          throw new PermanentError(err.message)
        }),
      )
    },
  }))
  fails(t, r, 'errors retry-after', /server-error → retry/, /rate-limited → retry/, /unauthorized → auth/, /forbidden → auth/)
})

t.test('errors: dropping Retry-After fails', async (t) => {
  const r = await run(goodPlugin({
    async send(events, ctx) {
      await inFives(events, (chunk) =>
        ctx.http.post('https://vendor.example/v1/events', { json: { events: chunk }, signal: ctx.signal }).catch((err: { response?: { statusCode: number } }) => {
          const s = err.response?.statusCode ?? 0
          if (s === 429 || s >= 500) throw new RetryableError('retry')
          throw err
        }),
      )
    },
  }), { skip: { 'retry-after': 'checked separately' } })
  fails(t, r, 'errors', /Retry-After: 7 → retryAfterMs 7000/)
})

t.test('abort: a plugin that ignores ctx.signal fails', async (t) => {
  const r = await run(goodPlugin({
    async send(events, ctx) {
      await inFives(events, (chunk) => ctx.http.post('https://vendor.example/v1/events', { json: { events: chunk } }))
    },
  }))
  fails(t, r, 'abort', /send rejects once its signal is aborted/, /the request was destroyed/)
})

t.test('batch: a plugin that sends a whole batch in one request fails the vendor limit', async (t) => {
  const r = await run(goodPlugin({
    async send(events, ctx) {
      await ctx.http.post('https://vendor.example/v1/events', { json: { events }, signal: ctx.signal })
    },
  }))
  fails(t, r, 'batch', /each request holds at most 5 events \(10, 10, 1\)/)
})

t.test('io: global fetch, node:http and a raw socket are all refused', async (t) => {
  const server = http.createServer((_q, s) => s.end('{}'))
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const calls: Record<string, DestinationDefinition['send']> = {
    fetch: async () => {
      await fetch(`http://127.0.0.1:${port}/`)
    },
    'http.request': async () => {
      await new Promise((res, rej) => http.request(`http://127.0.0.1:${port}/`, res).on('error', rej).end())
    },
    'a private got': async () => {
      await got.post(`http://127.0.0.1:${port}/`, { json: {}, retry: { limit: 0 } })
    },
  }
  for (const [name, sideChannel] of Object.entries(calls)) {
    const r = await run(goodPlugin({
      async send(events, ctx) {
        await sideChannel(events, ctx).catch(() => {})
        await ctx.http.post('https://vendor.example/v1/events', { json: { events }, signal: ctx.signal })
      },
    }))
    t.ok(failing(r, 'io').some((m) => /nothing reached the network behind ctx.http/.test(m)), `${name} is refused`)
  }
  // The guard is lifted afterwards.
  t.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), '{}')
})

t.test('readme: a setting the README does not name fails', async (t) => {
  const dir = t.testdir({ 'README.md': '# good\n\n| setting | description |\n|---|---|\n| `endpoint` | where |\n' })
  const r = await run(goodPlugin(), { readme: `${dir}/README.md` })
  fails(t, r, 'readme', /README names `url`/)
})
