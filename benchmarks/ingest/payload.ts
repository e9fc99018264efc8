/**
 * The request both servers answer: one Segment `POST /v1/batch` of 20 events as
 * analytics.js sends them (16 track, 4 identify, 700–760 B each, Basic auth). Every
 * request carries fresh messageIds, as a real client's would: with a fixed body the
 * router's messageId dedup would drop every event after the first request and the
 * benchmark would measure the dedup fast path instead of delivery.
 */
export const WRITE_KEY = 'bench-write-key'
export const AUTHORIZATION = 'Basic ' + Buffer.from(`${WRITE_KEY}:`).toString('base64')
export const EVENTS_PER_REQUEST = 20
export const PATH = '/v1/batch'

const MARK = '\u0000MID\u0000'
const USER_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'
// As a live client's: sent now (when this module loads, once per load-generator
// process), events from the last few seconds.
const SENT_MS = Date.now()
const SENT_AT = new Date(SENT_MS).toISOString()

function context(i: number): Record<string, unknown> {
  return {
    library: { name: 'analytics.js', version: 'npm:next-1.70.0' },
    page: {
      path: `/products/${1000 + i}`,
      referrer: 'https://www.google.com/',
      title: 'Monopoly – Example Shop',
      url: `https://shop.example.com/products/${1000 + i}`,
    },
    userAgent: USER_AGENT,
  }
}

function track(i: number): Record<string, unknown> {
  return {
    type: 'track',
    event: 'Product Viewed',
    messageId: MARK,
    anonymousId: '5c7e5f29-0b5f-4b0e-9f4c-0c7c1f7d2a11',
    userId: 'user-48213',
    timestamp: new Date(SENT_MS - (20 - i) * 150).toISOString(),
    properties: {
      product_id: '507f1f77bcf86cd799439011',
      sku: `G-${32 + i}`,
      category: 'Games',
      name: 'Monopoly: 3rd Edition',
      price: 18.99,
      quantity: 1,
      currency: 'USD',
    },
    context: context(i),
    integrations: {},
  }
}

function identify(i: number): Record<string, unknown> {
  return {
    type: 'identify',
    messageId: MARK,
    anonymousId: '5c7e5f29-0b5f-4b0e-9f4c-0c7c1f7d2a11',
    userId: 'user-48213',
    timestamp: new Date(SENT_MS - (20 - i) * 150).toISOString(),
    traits: {
      email: 'peter.gibbons@example.com',
      name: 'Peter Gibbons',
      plan: 'premium',
      logins: 5 + i,
      address: { city: 'Austin', country: 'US', postalCode: '78701' },
    },
    context: context(i),
    integrations: {},
  }
}

const events = Array.from({ length: EVENTS_PER_REQUEST }, (_, i) => (i % 5 === 4 ? identify(i) : track(i)))

/** The batch as JSON split at each messageId, so a request is a cheap join. */
const parts = JSON.stringify({ batch: events, sentAt: SENT_AT }).split(JSON.stringify(MARK))

/** Sizes of one event as sent (with a 36-character messageId), for the results file. */
export const EVENT_BYTES = events.map((e) => Buffer.byteLength(JSON.stringify({ ...e, messageId: 'x'.repeat(36) })))

/** The body of request number `n`: same events, messageIds unique to (`run`, `n`, index). */
export function batchBody(run: string, n: number): string {
  let out = parts[0]!
  for (let i = 1; i < parts.length; i++) out += `"${run}-${n}-${i}"` + parts[i]!
  return out
}
