/**
 * Enrichment inside the router, end to end to a capture destination: events from HTTP
 * intake and from backend calls are enriched before source policies; bots are flagged,
 * dropped and counted (`stats().bots`, memory and SQLite spool), or left to an `is_bot`
 * policy (JSON-Logic and DSL); `evaluate()` shows the same; no `enrich` block, no change.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../src/errors.js'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import type { RouterOptions } from '../src/config.js'
import { basic, DEFAULT_SOURCES, listen, send, WRITE_KEY, type Teardown } from './helpers/http.js'

const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
const auth = { Authorization: basic(WRITE_KEY) }

async function collector(t: Teardown, options: Omit<RouterOptions, 'destinations' | 'sources'>) {
  const capture = captureDestination('capture')
  const router = createRouter({ sources: DEFAULT_SOURCES, logLevel: 'silent', ...options, destinations: [{ name: 'capture', type: capture.plugin, delivery: { batch: { maxWaitMs: 0 } } }] })
  t.teardown(() => router.close({ timeoutMs: 2000 }))
  const { base } = await listen(t, router.handler())
  return { router, capture, base }
}

const page = (messageId: string, userAgent: string, extra: Record<string, unknown> = {}) => ({
  type: 'page',
  messageId,
  anonymousId: 'anon-1',
  name: 'Home',
  context: { userAgent, page: { url: 'https://shop.example/?utm_source=news&utm_campaign=spring' }, ...extra },
})

t.test('HTTP events are enriched before delivery: device, campaign, masked IP, bot flag', async (t) => {
  const { capture, base } = await collector(t, { enrich: { ip: 'mask' } })
  const res = await send(`${base}/v1/batch`, { headers: auth, body: { batch: [page('human-1', IPHONE), page('bot-1', GOOGLEBOT)] } })
  t.equal(res.status, 200)
  const events = await capture.waitFor(2)
  const byId = Object.fromEntries(events.map((e) => [e.messageId, e.context as Record<string, any>]))
  const human = byId['human-1']!
  t.same(human.device, { type: 'mobile', manufacturer: 'Apple', model: 'iPhone' })
  t.same(human.os, { name: 'iOS', version: '17.4' })
  t.same(human.campaign, { source: 'news', name: 'spring' })
  t.equal(human.ip, '127.0.0.0', "the socket's address, masked to its /24")
  t.notOk('bot' in human)
  t.equal(byId['bot-1']!.bot, true, 'bots: flag is the default')
})

t.test('backend calls go through the same enrichment', async (t) => {
  const { router, capture } = await collector(t, { enrich: { ip: 'drop' } })
  await router.track({ event: 'Order Completed', anonymousId: 'anon-2', messageId: 'srv-1', context: { userAgent: IPHONE, ip: '198.51.100.4' } })
  const [ev] = await capture.waitFor(1)
  const context = ev!.context as Record<string, any>
  t.equal(context.os.name, 'iOS')
  t.notOk('ip' in context)
})

t.test("bots: 'drop' drops and counts bots before any policy; dropped stays the policies' count", async (t) => {
  const { router, capture, base } = await collector(t, {
    enrich: { bots: 'drop' },
    policies: [{ name: 'count-all', then: [{ set: [{ path: 'properties.seen', value: true }] }] }],
  })
  const res = await send(`${base}/v1/batch`, { headers: auth, body: { batch: [page('h-1', IPHONE), page('b-1', GOOGLEBOT), page('b-2', 'curl/8.4.0')] } })
  t.equal(res.status, 200)
  await router.track({ event: 'X', anonymousId: 'a', messageId: 'b-3', context: { userAgent: GOOGLEBOT } })
  const events = await capture.waitFor(1)
  await new Promise((r) => setTimeout(r, 50))
  t.same(events.map((e) => e.messageId), ['h-1'])
  const stats = router.stats()
  t.equal(stats.accepted, 4)
  t.equal(stats.bots, 3)
  t.equal(stats.dropped, 0)
  t.equal(stats.policies.source['count-all']!.evaluated, 1, 'policies never saw the bots')
})

t.test("bots: 'drop' with the SQLite spool counts the same way", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-enrich-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { router, capture, base } = await collector(t, {
    enrich: { bots: 'drop' },
    spool: { type: 'sqlite', path: join(dir, 'spool.db'), pollMs: 5 },
    policies: [{ name: 'drop-test', when: { '==': [{ var: 'name' }, 'Test'] }, then: 'drop' }],
  })
  const res = await send(`${base}/v1/batch`, { headers: auth, body: { batch: [page('h-1', IPHONE), page('b-1', GOOGLEBOT), { ...page('t-1', IPHONE), name: 'Test' }] } })
  t.equal(res.status, 200)
  const events = await capture.waitFor(1)
  t.same(events.map((e) => e.messageId), ['h-1'])
  t.equal((events[0]!.context as Record<string, any>).os.name, 'iOS', 'enriched before it was spooled')
  const stats = router.stats()
  t.equal(stats.accepted, 3)
  t.equal(stats.bots, 1)
  t.equal(stats.dropped, 1, 'the policy drop only')
})

t.test('is_bot as a policy: JSON-Logic with the user agent or the event, and a DSL condition', async (t) => {
  const rules: Array<[string, unknown]> = [
    ['json-logic on the user agent', { name: 'bots', when: { is_bot: [{ var: 'context.userAgent' }] }, then: { drop: true } }],
    ['json-logic on the event', { name: 'bots', when: { is_bot: [{ var: '' }] }, then: 'drop' }],
    ['dsl on the user agent', { name: 'bots', when: 'isBot(event.context.userAgent)', then: 'drop' }],
    ['dsl on the event', { name: 'bots', when: 'isBot(event)', then: 'drop' }],
  ]
  for (const [label, rule] of rules) {
    await t.test(label, async (t) => {
      const { router, capture, base } = await collector(t, { enrich: { bots: 'off' }, policies: [rule] })
      const res = await send(`${base}/v1/batch`, { headers: auth, body: { batch: [page('h-1', IPHONE), page('b-1', GOOGLEBOT)] } })
      if (res.status !== 200) t.fail(res.text)
      const events = await capture.waitFor(1)
      await new Promise((r) => setTimeout(r, 30))
      t.same(events.map((e) => e.messageId), ['h-1'])
      t.notOk('bot' in (events[0]!.context as object), "bots: 'off' flags nothing")
      const stats = router.stats()
      t.equal(stats.bots, 0)
      t.equal(stats.dropped, 1)
      t.equal(stats.policies.source.bots!.dropped, 1)
    })
  }
  // is_bot works without an enrich block: it is an ordinary operation.
  const router = createRouter({ logLevel: 'silent', policies: [{ when: { is_bot: ['Googlebot/2.1'] }, then: 'drop' }] })
  t.teardown(() => router.close())
  t.equal(router.evaluate({ type: 'track', event: 'X', anonymousId: 'a' }).dropped, true, 'a constant argument is folded at compile time')
})

t.test('evaluate() shows the enrichment and the bot verdict', async (t) => {
  const { router } = await collector(t, { enrich: { bots: 'drop', ip: 'mask' } })
  const human = router.evaluate({ ...page('e-1', IPHONE, { ip: '203.0.113.9' }) })
  t.equal(human.bot, false)
  t.equal(human.dropped, false)
  t.equal((human.event.context as Record<string, any>).os.name, 'iOS')
  t.equal((human.event.context as Record<string, any>).ip, '203.0.113.0')
  t.equal(human.destinations.capture!.delivered, true)
  const bot = router.evaluate(page('e-2', GOOGLEBOT))
  t.equal(bot.bot, true)
  t.equal(bot.dropped, true)
  t.same(bot.destinations, {})
  t.equal(router.stats().bots, 0, 'a dry run counts nothing')
})

t.test('without an enrich block events are left as they came', async (t) => {
  const { capture, base } = await collector(t, {})
  await send(`${base}/v1/batch`, { headers: auth, body: { batch: [page('p-1', GOOGLEBOT)] } })
  const [ev] = await capture.waitFor(1)
  const context = ev!.context as Record<string, any>
  t.notOk('bot' in context || 'device' in context || 'campaign' in context || 'os' in context)
  t.equal(context.ip, '127.0.0.1')
})

t.test('enrich options are validated with the config', async (t) => {
  const err = t.throws(() => createRouter({ logLevel: 'silent', enrich: { ip: 'hash' as never } })) as ConfigError
  t.ok(err instanceof ConfigError)
  t.match(err.message, /\/enrich\/ip/)
})
