/**
 * The enricher on its own: device/OS/browser from real user agents (desktop Chrome,
 * iPhone Safari, Android phones, an iPad, Googlebot) filling only what the client did
 * not send; the campaign from utm_* as analytics.js names it, with bounded parsing of
 * hostile URLs; the IP kept, masked or dropped; options checked against EnrichSchema.
 */
import t from 'tap'
import { createEnricher, isBotValue } from '../src/enrich/index.js'
import { campaignFromQuery, MAX_PARAMS, MAX_VALUE, queryOf } from '../src/enrich/campaign.js'
import { UserAgentCache } from '../src/enrich/user-agent.js'
import { ConfigError } from '../src/errors.js'
import type { FirstpartyEvent } from '../src/normalize/schema.js'

const UA = {
  chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  pixel: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  samsung: 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36',
  reducedAndroid: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  googlebotSmartphone: 'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
}

function event(context: Record<string, unknown>): FirstpartyEvent {
  return { type: 'track', event: 'X', anonymousId: 'a', messageId: 'm', context, timestamp: '', originalTimestamp: '', receivedAt: '' } as unknown as FirstpartyEvent
}

function enriched(context: Record<string, unknown>, options: Parameters<typeof createEnricher>[0] = {}) {
  const ev = event(context)
  const verdict = createEnricher(options).enrich(ev)
  return { context: ev.context as Record<string, any>, verdict }
}

t.test('user agents: device, os and browser', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    [UA.chromeWindows, { device: { type: 'desktop' }, os: { name: 'Windows', version: '10' }, browser: { name: 'Chrome', version: '124.0.0.0' } }],
    [UA.safariMac, { device: { type: 'desktop', manufacturer: 'Apple', model: 'Macintosh' }, os: { name: 'Mac OS', version: '10.15.7' }, browser: { name: 'Safari', version: '17.4' } }],
    [UA.iphone, { device: { type: 'mobile', manufacturer: 'Apple', model: 'iPhone' }, os: { name: 'iOS', version: '17.4' }, browser: { name: 'Mobile Safari', version: '17.4' } }],
    [UA.ipad, { device: { type: 'tablet', manufacturer: 'Apple', model: 'iPad' }, os: { name: 'iOS', version: '17.4' }, browser: { name: 'Mobile Safari', version: '17.4' } }],
    [UA.pixel, { device: { type: 'mobile', manufacturer: 'Google', model: 'Pixel 8' }, os: { name: 'Android', version: '14' }, browser: { name: 'Chrome', version: '124.0.6367.82' } }],
    [UA.samsung, { device: { type: 'mobile', manufacturer: 'Samsung', model: 'SM-S911B' }, os: { name: 'Android', version: '13' }, browser: { name: 'Chrome', version: '112.0.0.0' } }],
    // Chrome's reduced UA says "K" for every phone: no model rather than a wrong one.
    [UA.reducedAndroid, { device: { type: 'mobile' }, os: { name: 'Android', version: '10' }, browser: { name: 'Chrome', version: '124.0.0.0' } }],
  ]
  for (const [ua, expected] of cases) {
    const { context, verdict } = enriched({ userAgent: ua })
    t.equal(verdict, 'keep')
    t.same({ device: context.device, os: context.os, browser: context.browser }, expected, ua.slice(13, 60))
    t.notOk('bot' in context, 'not a bot')
  }
  // Googlebot: flagged; ua-parser finds no device in the desktop crawler's UA, and a bot is not called a desktop.
  const bot = enriched({ userAgent: UA.googlebot }).context
  t.equal(bot.bot, true)
  t.notOk('device' in bot)
  const smart = enriched({ userAgent: UA.googlebotSmartphone }).context
  t.equal(smart.bot, true)
  t.same(smart.os, { name: 'Android', version: '6.0.1' })
})

t.test('what the client sent is never overwritten; only its missing fields are filled', async (t) => {
  const { context } = enriched({
    userAgent: UA.iphone,
    device: { type: 'ios', model: 'iPhone15,2', id: 'dev-1' }, // a mobile SDK's device
    os: { name: 'iOS' },
    browser: 'custom', // not an object: left alone
  })
  t.same(context.device, { type: 'ios', model: 'iPhone15,2', id: 'dev-1', manufacturer: 'Apple' })
  t.same(context.os, { name: 'iOS', version: '17.4' })
  t.equal(context.browser, 'custom')

  const off = enriched({ userAgent: UA.iphone }, { userAgent: false }).context
  t.notOk('device' in off || 'os' in off || 'browser' in off, 'userAgent: false parses nothing')
  t.same(enriched({}).context, {}, 'no user agent, nothing added')
  t.same(enriched({ userAgent: 42 }).context, { userAgent: 42 }, 'a non-string user agent is ignored')
})

t.test('the parse cache is a bounded LRU', async (t) => {
  const cache = new UserAgentCache(2)
  const a = cache.parse(UA.iphone)
  t.equal(cache.parse(UA.iphone), a, 'a repeated UA is not parsed again')
  cache.parse(UA.pixel)
  cache.parse(UA.iphone) // now the most recent
  cache.parse(UA.samsung) // evicts the pixel
  t.equal(cache.size, 2)
  t.equal(cache.parse(UA.iphone), a, 'the recently used entry survived')
  t.not(cache.parse(UA.pixel), undefined)
  // Long user agents are cut, as ua-parser-js cuts them, and cached under the cut key.
  const long = UA.iphone + ' x'.repeat(5000)
  t.same(cache.parse(long).os, { name: 'iOS', version: '17.4' })
})

t.test('campaign from utm_* in context.page.url, named as analytics.js names it', async (t) => {
  const { context } = enriched({
    page: { url: 'https://shop.example/p?utm_source=news&utm_medium=email&utm_campaign=spring%20sale&utm_term=shoes&utm_content=hero&utm_id=c-42&other=1#utm_source=hash' },
  })
  t.same(context.campaign, { source: 'news', medium: 'email', name: 'spring sale', term: 'shoes', content: 'hero', id: 'c-42' })

  t.same(enriched({ page: { url: 'https://x/?utm_source=a' }, campaign: { name: 'client' } }).context.campaign, { name: 'client' }, "the client's campaign wins")
  t.notOk('campaign' in enriched({ page: { url: 'https://x/?q=1' } }).context, 'no utm, no campaign object')
  t.notOk('campaign' in enriched({ page: { url: 'https://x/?utm_source=a' } }, { campaign: false }).context, 'campaign: false')
  t.same(enriched({ page: { url: 'https://x/landing', search: '?utm_source=b' } }).context.campaign, { source: 'b' }, 'page.search when the URL has no query')
  t.same(enriched({ page: { url: 'https://x/?utm_source=a%2' } }).context.campaign, { source: 'a%2' }, 'a bad escape is kept as it is (analytics.js does the same)')
  t.same(enriched({ page: { url: 'https://x/?utm_source=a+b' } }).context.campaign, { source: 'a+b' }, '+ is not a space to analytics.js')
  t.same(enriched({ page: { url: 'https://x/?utm_source=a?utm_medium=b' } }).context.campaign, { source: 'a', medium: 'b' }, 'a stray ? separates, as in analytics.js')
  t.same(enriched({ page: { url: 'https://x/?utm_custom=z&utm_source=' } }).context.campaign, { source: '' }, 'only the known parameters; an empty value is a value')
  t.same(enriched({ page: 'https://x/?utm_source=a' }).context.page, 'https://x/?utm_source=a', 'a page that is not an object is ignored')
})

t.test('campaign parsing is bounded on hostile URLs', async (t) => {
  const many = `?${'a=1&'.repeat(MAX_PARAMS)}utm_source=late`
  t.equal(campaignFromQuery(queryOf(many)!), undefined, `parameters after the first ${MAX_PARAMS} are not read`)
  const huge = campaignFromQuery(`utm_source=${'%41'.repeat(100_000)}`)!
  t.equal(huge.source!.length, MAX_VALUE, 'values are cut')
  t.match(huge.source, /^A+$/)
  const start = process.hrtime.bigint()
  const url = `https://x/?${'utm_'.repeat(1_000_000)}`
  t.equal(queryOf(url)!.length, 8192 - 'https://x/?'.length, 'only the first 8 KiB of a URL is looked at')
  enriched({ page: { url } })
  t.ok(Number(process.hrtime.bigint() - start) / 1e6 < 1000, 'fast')
  t.same(Object.getPrototypeOf(campaignFromQuery('utm_source=a&__proto__=x&utm_constructor=y')!), Object.prototype)
})

t.test('ip: keep, mask (IPv4 /24, IPv6 /48), drop', async (t) => {
  t.equal(enriched({ ip: '203.0.113.77' }).context.ip, '203.0.113.77', 'keep is the default')
  t.equal(enriched({ ip: '203.0.113.77' }, { ip: 'mask' }).context.ip, '203.0.113.0')
  t.equal(enriched({ ip: '2001:db8:85a3:8d3:1319:8a2e:370:7348' }, { ip: 'mask' }).context.ip, '2001:db8:85a3::')
  t.equal(enriched({ ip: '2001:db8::1' }, { ip: 'mask' }).context.ip, '2001:db8:0::')
  t.equal(enriched({ ip: '::ffff:203.0.113.77' }, { ip: 'mask' }).context.ip, '203.0.113.0', 'an IPv4-mapped address is masked as IPv4')
  t.equal(enriched({ ip: 'not-an-ip' }, { ip: 'mask' }).context.ip, 'not-an-ip')
  const dropped = enriched({ ip: '203.0.113.77', userAgent: UA.iphone }, { ip: 'drop' }).context
  t.notOk('ip' in dropped)
  t.equal(dropped.os.name, 'iOS')
})

t.test('bots: flag (default), drop returns a verdict, off', async (t) => {
  t.equal(enriched({ userAgent: UA.googlebot }).verdict, 'keep')
  t.equal(enriched({ userAgent: UA.googlebot }).context.bot, true)
  const drop = enriched({ userAgent: UA.googlebot, ip: '203.0.113.7' }, { bots: 'drop' })
  t.equal(drop.verdict, 'bot')
  t.equal(enriched({ userAgent: UA.iphone }, { bots: 'drop' }).verdict, 'keep')
  const off = enriched({ userAgent: UA.googlebot }, { bots: 'off' })
  t.equal(off.verdict, 'keep')
  t.notOk('bot' in off.context)
  t.equal(enriched({ userAgent: 'curl/8.4.0' }, { userAgent: false }).context.bot, true, 'bots are found without UA parsing too')
  t.equal(enriched({ userAgent: UA.googlebot }, { userAgent: false, bots: 'drop' }).verdict, 'bot')
  // The is_bot operation's function: a user agent, or an event's context.userAgent.
  t.equal(isBotValue(UA.googlebot), true)
  t.equal(isBotValue(UA.iphone), false)
  t.equal(isBotValue({ context: { userAgent: UA.googlebot } }), true)
  for (const v of [null, undefined, 42, '', [UA.googlebot], { context: null }, { context: { userAgent: 1 } }, {}]) t.equal(isBotValue(v), false, JSON.stringify(v))
})

t.test('options are checked against EnrichSchema with paths under /enrich', async (t) => {
  const bad: Array<[unknown, string]> = [
    [{ ip: 'hash' }, '/enrich/ip'],
    [{ bots: true }, '/enrich/bots'],
    [{ userAgnet: true }, '/enrich/userAgnet'],
    [{ geo: {} }, '/enrich/geo/database'],
    [{ geo: { database: 'x.mmdb', watch: true } }, '/enrich/geo/watch'],
  ]
  for (const [options, path] of bad) {
    const err = t.throws(() => createEnricher(options as never)) as ConfigError
    t.equal(err.code, 'CONFIG_INVALID')
    t.equal(err.path, path, JSON.stringify(options))
  }
  const e = createEnricher()
  await e.ready
  await e.close()
})
