/**
 * Suppressed subjects' events never reach a destination, whatever path they came in
 * by: every collector path, the pixel, a source plugin, backend calls, a durable spool,
 * and events that were already waiting (queued, spooled, dead-lettered) when the
 * subject was suppressed.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { once } from 'node:events'
import Type from 'typebox'
import { createRouter, defineSource, type Logger, type Router } from '../src/index.js'
import { main } from '../src/cli.js'
import { captureDestination, startTestServer } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const KEY = 'wk_suppress'

const crm = defineSource({
  name: 'crm-webhook',
  version: '1.0.0',
  settings: Type.Object({}),
  handle(req) {
    const b = req.body as { contact: string; email: string }
    return [{ type: 'identify', userId: b.contact, traits: { email: b.email } }]
  },
})

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-suppress-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Every way an event can come in, for a subject given by userId, anonymousId or email. */
async function sendEveryWay(base: string, router: Router, who: Record<string, unknown>, tag: string, pixel: boolean): Promise<number> {
  const ev = (type: string, extra: Record<string, unknown> = {}) => ({ type, ...who, ...extra, properties: { tag, ...(extra.properties as object) } })
  const auth = { Authorization: basic(KEY) }
  const replies = await Promise.all([
    send(`${base}/v1/track`, { headers: auth, body: ev('track', { event: 'A' }) }),
    send(`${base}/v1/t`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...ev('track', { event: 'B' }), writeKey: KEY }) }),
    send(`${base}/v1/batch`, { headers: auth, body: { batch: [ev('track', { event: 'C' }), ev('page', { name: 'Home' })] } }),
    send(`${base}/v1/b`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ writeKey: KEY, batch: [ev('track', { event: 'D' })] }) }),
    send(`${base}/v1/import`, { headers: { ...auth, 'Content-Encoding': 'gzip', 'Content-Type': 'application/x-www-form-urlencoded' }, body: gzipSync(JSON.stringify({ batch: [ev('identify', { traits: { plan: 'pro', ...(who.traits as object) } })] })) }),
    send(`${base}/beacon/v1/batch?writeKey=${KEY}`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ batch: [ev('track', { event: 'E' })] }) }),
  ])
  for (const r of replies) if (r.status !== 200) throw new Error(`intake answered ${r.status}: ${r.text}`)
  let n = 7
  // The pixel carries ids in the query string (no traits there).
  if (pixel) {
    const q = new URLSearchParams({ writeKey: KEY, event: 'F', ...(who.userId ? { userId: who.userId as string } : {}), ...(who.anonymousId ? { anonymousId: who.anonymousId as string } : {}) })
    const px = await send(`${base}/pixel/v1/track?${q}`)
    if (px.status !== 200) throw new Error(`pixel answered ${px.status}`)
    n++
  }
  await router.track({ ...who, event: 'Backend', properties: { tag } })
  n++
  return n
}

for (const spoolType of ['memory', 'sqlite'] as const) {
  for (const [label, who, shown] of [
    ['userId', { userId: 'u-sup' }, { userId: 'u-sup' }],
    ['anonymousId', { anonymousId: 'anon-sup' }, { anonymousId: 'anon-sup' }],
    ['email (traits, any case)', { anonymousId: 'anon-other', traits: { email: '  Jane.Doe@Example.COM ' }, context: { traits: { email: 'jane.doe@example.com' } } }, { email: 'jane.doe@example.com' }],
  ] as const) {
    const byEmail = 'email' in shown
    t.test(`${spoolType} spool: a subject suppressed by ${label} reaches no destination by any path`, async (t) => {
      const dir = tmp(t)
      const cap = captureDestination('cap')
      const router = createRouter({
        logger: quiet,
        plugins: [cap.plugin, crm],
        sources: [{ name: 'web', writeKey: KEY }, { name: 'crm', type: 'crm-webhook' }],
        destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }],
        ...(spoolType === 'sqlite' ? { spool: { type: 'sqlite' as const, path: join(dir, 'spool.db'), pollMs: 5 } } : {}),
      })
      t.teardown(() => router.close({ timeoutMs: 200 }))
      const { base } = await listen(t, router.handler())
      const added = await router.suppression.add(shown, { reason: 'test opt-out' })
      t.equal(added.added, 1, 'one new suppression')
      t.ok(router.suppression.has(shown))

      // The pixel carries no traits: it cannot name an email, so it is only sent for id subjects.
      const sent = await sendEveryWay(base, router, who as Record<string, unknown>, 'suppressed', !byEmail)
      // A webhook source's event about another contact who has this email.
      const hook = await send(`${base}/sources/crm`, { body: { contact: 'c-1', email: 'JANE.DOE@example.com' } })
      t.equal(hook.status, 200)
      // A control subject is delivered normally (proves the pipeline ran).
      await router.track({ userId: 'someone-else', event: 'Control' })
      router.flush()
      await cap.waitFor(byEmail ? 1 : 2)
      await router.close({ timeoutMs: 2000 })
      const got = cap.events.map((e) => (e.type === 'identify' ? `identify:${e.userId}` : e.event)).sort()
      t.same(got, byEmail ? ['Control'] : ['Control', 'identify:c-1'], 'only events of other subjects were delivered')
      t.equal(router.stats().suppressed, sent + (byEmail ? 1 : 0), 'every suppressed event is counted')
    })
  }
}

t.test('an email-suppressed subject: events without the email are not matched, events with it are (counted exactly)', async (t) => {
  const cap = captureDestination('cap')
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 200 }))
  await router.suppression.add({ email: 'a@b.example' })
  await router.identify({ userId: 'x', traits: { email: 'A@B.example' } })
  await router.track({ userId: 'x', event: 'Ordered', properties: { email: 'a@b.example' } })
  await router.track({ userId: 'x', event: 'Viewed' })
  await router.close({ timeoutMs: 1000 })
  t.same(cap.events.map((e) => e.event), ['Viewed'])
  t.equal(router.stats().suppressed, 2)
})

t.test('suppressing erases what already waits: buffered, retrying and dead-lettered events', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  // The destination is down: events wait for a retry, then go to dead letters.
  server.fallback = { status: 503, headers: { 'Retry-After': '1' } }
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { maxAttempts: 2, minDelayMs: 10, maxDelayMs: 20 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 200 }))
  await router.track({ userId: 'dead-one', event: 'First' })
  await router.track({ userId: 'other', event: 'First' })
  // Wait for both to be dead-lettered (2 attempts each, Retry-After 1 s).
  for (let i = 0; i < 100 && router.deadLetters.count() < 2; i++) await new Promise((r) => setTimeout(r, 50))
  t.equal(router.deadLetters.count(), 2, 'both dead-lettered')
  const retrying = once(router.events, 'retry')
  await router.track({ userId: 'dead-one', event: 'Second' })
  await retrying
  // 'Second' now waits for its retry.
  const res = await router.suppression.add({ userId: 'dead-one' })
  t.equal(res.erased.deadLetters, 1, 'the dead letter is erased')
  t.equal(res.erased.queued, 1, 'the event waiting for a retry is erased')
  t.equal(router.deadLetters.count(), 1, "the other subject's dead letter stays")
  t.equal(router.stats().destinations.hook!.erased, 1, 'counted as erased')
  server.fallback = { status: 200 }
  t.same(router.deadLetters.replay(), { replayed: 1, skipped: 0 })
  await router.close({ timeoutMs: 2000 })
  const delivered = server.requests.filter((r) => r === server.requests.at(-1)).flatMap((r) => (r.json as { batch: Array<{ userId: string; event: string }> }).batch)
  t.same(delivered.map((e) => e.userId), ['other'], 'only the other subject is delivered after replay')
  t.equal(router.stats().destinations.hook!.held, 0)
})

t.test('the list persists in SQLite and the CLI manages it; a running router picks up CLI changes', async (t) => {
  const dir = tmp(t)
  const db = join(dir, 'privacy.db')
  const config = join(dir, 'firstparty.config.json')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(config, JSON.stringify({ privacy: { store: { type: 'sqlite', path: db }, suppression: { refreshMs: 50 } } }))
  const out: string[] = []
  const err: string[] = []
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }
  t.equal(await main(['suppress', 'add', '--user-id', 'cli-user', '--reason', 'ticket 42', '--config', config], io), 0, err.join('\n'))
  t.equal(await main(['suppress', 'add', '--email', 'Cli@Example.com', '--config', config], io), 0)

  const cap = captureDestination('cap')
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], privacy: { store: { type: 'sqlite', path: db }, suppression: { refreshMs: 50 } }, destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 200 }))
  await router.ready()
  t.ok(router.suppression.has({ userId: 'cli-user' }), 'loaded from the file at start')
  t.ok(router.suppression.has({ email: 'cli@example.com' }))
  await router.track({ userId: 'cli-user', event: 'X' })
  t.equal(await main(['suppress', 'remove', '--user-id', 'cli-user', '--config', config], io), 0)
  for (let i = 0; i < 40 && router.suppression.has({ userId: 'cli-user' }); i++) await new Promise((r) => setTimeout(r, 25))
  t.notOk(router.suppression.has({ userId: 'cli-user' }), 'the running router re-read the list')
  await router.track({ userId: 'cli-user', event: 'Y' })

  out.length = 0
  t.equal(await main(['suppress', 'list', '--json', '--config', config], io), 0)
  const listed = out.join('\n').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; value: string })
  t.same(listed.map((s) => s.kind), ['emailHash'])
  t.notMatch(out.join('\n'), /cli@example\.com/i, 'the email itself is never stored or printed')
  await router.close({ timeoutMs: 1000 })
  t.same(cap.events.map((e) => e.event), ['Y'])

  t.equal(await main(['suppress', 'add', '--config', config], io), 2, 'no id: usage error')
  t.match(err.join('\n'), /--user-id|--anonymous-id|--email/)
})

t.test('bad ids are refused with a clear error', async (t) => {
  const router = createRouter({ logger: quiet })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await t.rejects(router.suppression.add({}), /at least one of userId, anonymousId, email/)
  await t.rejects(router.suppression.add({ userId: { $ne: 1 } as unknown as string }), /userId must be a string/)
  await t.rejects(router.deleteUser({ userId: '' }), /userId must be 1–512 characters/)
})

t.test('a privacy store that cannot open: intake refuses (503 privacy_unavailable) rather than skip the suppression check', async (t) => {
  const dir = tmp(t)
  const { writeFileSync } = await import('node:fs')
  // A file where the store's folder should be: the SQLite file cannot be created.
  writeFileSync(join(dir, 'not-a-folder'), 'x')
  const cap = captureDestination('cap')
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], sources: [{ name: 'web', writeKey: KEY }], privacy: { store: { type: 'sqlite', path: join(dir, 'not-a-folder', 'privacy.db') } }, destinations: [{ name: 'cap', type: 'cap' }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await t.rejects(router.ready(), { code: 'CONFIG_PRIVACY_STORE' })
  const { base } = await listen(t, router.handler())
  const reply = await send(`${base}/v1/track`, { headers: { Authorization: basic(KEY) }, body: { userId: 'u', event: 'E' } })
  t.equal(reply.status, 503)
  t.equal(reply.json.code, 'privacy_unavailable')
  t.match(reply.json.message, /privacy store could not be opened \(the server log says why\); nothing was accepted; retry/)
  t.notMatch(reply.json.message, /not-a-folder/, 'no server path in the answer to a client')
  t.equal(reply.headers['retry-after'], '5')
  await t.rejects(router.track({ userId: 'u', event: 'E' }), { code: 'privacy_unavailable' })
  t.equal(cap.events.length, 0)
})
