/**
 * Per-source rate limits (`rateLimit: { eventsPerSecond, burst }`): over the limit is a
 * JSON 429 rate_limited with a Retry-After that browsers can read; other sources are
 * not affected. The token bucket itself is tested with an injected clock.
 */
import t from 'tap'
import { TokenBucket } from '../src/intake/rate-limit.js'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

// 0.01 events/s: a token every 100 s, so nothing refills while a test runs.
const SOURCES = [
  { name: 'web', writeKey: WRITE_KEY, rateLimit: { eventsPerSecond: 0.01, burst: 3 } },
  { name: 'other', writeKey: 'wk_other' },
]

for (const kind of HOSTS) {
  t.test(`${kind}: over the source's limit is 429 rate_limited with Retry-After`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: SOURCES } })
    for (let i = 0; i < 3; i++) {
      const ok = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track', { messageId: `rl-${i}` }) })
      t.equal(ok.status, 200, `event ${i + 1} of the burst`)
    }
    const limited = await send(`${c.url}/v1/t`, {
      headers: { Origin: 'https://shop.example', 'Content-Type': 'text/plain' },
      body: JSON.stringify({ ...sampleEvent('track'), writeKey: WRITE_KEY }),
    })
    t.equal(limited.status, 429)
    t.equal(limited.json.code, 'rate_limited')
    t.match(limited.json.message, /"web"/)
    const retryAfter = Number(limited.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 90 && retryAfter <= 100, `Retry-After is the wait for one token (${limited.headers['retry-after']})`)
    t.match(String(limited.headers['access-control-expose-headers']), /Retry-After/i, 'analytics.js can read Retry-After')

    const pixel = await send(`${c.url}/pixel/v1/track?writeKey=${WRITE_KEY}&event=E&anonymousId=a`)
    t.equal(pixel.status, 429, 'the pixel counts against the same source')
    const batch = await send(`${c.url}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: { batch: [{ ...sampleEvent('track'), type: 'track' }] } })
    t.equal(batch.status, 429)

    const other = await send(`${c.url}/v1/track`, { headers: { Authorization: basic('wk_other') }, body: sampleEvent('track', { messageId: 'other-ok' }) })
    t.equal(other.status, 200, 'another source has its own (unlimited) bucket')
    t.equal(acceptedCount(c.router), 4)
    t.equal(c.router.stats().rejected.rate_limited, 3)
    const events = await c.capture.waitFor(4)
    t.same(events.map((e) => e.messageId).sort(), ['other-ok', 'rl-0', 'rl-1', 'rl-2'])
  })

  t.test(`${kind}: a batch counts each of its events`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: [{ name: 'web', writeKey: WRITE_KEY, rateLimit: { eventsPerSecond: 0.01, burst: 5 } }] } })
    const batch = (n: number, p: string) => ({ batch: Array.from({ length: n }, (_, i) => ({ ...sampleEvent('track'), type: 'track', messageId: `${p}${i}` })) })
    t.equal((await send(`${c.url}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: batch(4, 'a') })).status, 200)
    const two = await send(`${c.url}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: batch(2, 'b') })
    t.equal(two.status, 429, '4 + 2 > burst 5: the whole batch waits')
    t.equal((await send(`${c.url}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: batch(1, 'c') })).status, 200, 'one more fits')
    t.equal(acceptedCount(c.router), 5)
  })

  t.test(`${kind}: a batch larger than the burst is not refused forever`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: [{ name: 'web', writeKey: WRITE_KEY, rateLimit: { eventsPerSecond: 0.01, burst: 10 } }] } })
    // analytics-node flushes 15 events at a time; a 10-event burst must not 429 it on every retry.
    const body = { batch: Array.from({ length: 15 }, (_, i) => ({ ...sampleEvent('track'), type: 'track', messageId: `big-${i}` })) }
    const first = await send(`${c.url}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body })
    t.equal(first.status, 200, 'a full bucket admits the oversized batch')
    const next = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track') })
    t.equal(next.status, 429, 'and the debt is paid back before anything else')
    t.equal(acceptedCount(c.router), 15)
  })
}

t.test('TokenBucket: refill, burst cap, wait times, debt', async (t) => {
  const b = new TokenBucket(2, 4, 0)
  t.equal(b.take(4, 0), 0, 'burst available at start')
  t.equal(b.take(1, 0), 500, 'empty: 500 ms until one token at 2/s')
  const short = b.take(1, 499)
  t.ok(short >= 1 && short <= 2, `still about 1 ms short (${short})`)
  t.equal(b.take(1, 500), 0, 'refilled')
  t.equal(b.take(3, 60_000), 0, 'a long idle refills only up to burst')
  t.equal(b.take(2, 60_000), 500, 'burst 4: one left, one more needed')
  const d = new TokenBucket(1, 2, 0)
  t.equal(d.take(5, 0), 0, 'an oversized request is granted from a full bucket')
  t.equal(d.take(1, 0), 4000, 'then 3 tokens of debt and one more: 4 s')
  t.equal(d.take(5, 3000), 2000, 'oversized again: waits only until the bucket is full, not for 5 tokens')
  t.equal(d.take(5, 5000), 0)
})
