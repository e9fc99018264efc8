/**
 * normalizeEvent on its own: ids, messageId, the timestamp rules with clock-skew
 * correction, context.ip, and validation errors that name the field (with the
 * event's place in a batch).
 */
import t from 'tap'
import { HttpError } from '../src/errors.js'
import { normalizeEvent } from '../src/normalize/normalize.js'

const receivedAt = new Date('2024-05-01T12:00:00.000Z')
const norm = (raw: unknown, extra: Partial<Parameters<typeof normalizeEvent>[1]> = {}) => normalizeEvent(raw, { receivedAt, where: '', ...extra })

function failure(fn: () => unknown): { code: string; status: number; message: string } | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof HttpError) return { code: err.code, status: err.status, message: err.message }
    throw err
  }
  return undefined
}

t.test('messageId is generated when missing, kept when given', async (t) => {
  const a = norm({ type: 'track', event: 'E', userId: 'u' })
  const b = norm({ type: 'track', event: 'E', userId: 'u' })
  t.match(a.messageId, /^[0-9a-f-]{36}$/)
  t.not(a.messageId, b.messageId)
  t.equal(norm({ type: 'track', event: 'E', userId: 'u', messageId: 'keep-me' }).messageId, 'keep-me')
})

t.test('timestamps', async (t) => {
  const none = norm({ type: 'track', event: 'E', userId: 'u' })
  t.equal(none.receivedAt, '2024-05-01T12:00:00.000Z')
  t.equal(none.timestamp, '2024-05-01T12:00:00.000Z')
  t.equal(none.originalTimestamp, '2024-05-01T12:00:00.000Z')
  t.equal(none.sentAt, undefined)

  // Client clock 3 hours slow; event happened 2.5 s before it was sent.
  const skew = norm({ type: 'track', event: 'E', userId: 'u', originalTimestamp: '2024-05-01T09:00:00.000Z', sentAt: '2024-05-01T09:00:02.500Z' })
  t.equal(skew.timestamp, '2024-05-01T11:59:57.500Z', 'receivedAt − (sentAt − originalTimestamp)')
  t.equal(skew.originalTimestamp, '2024-05-01T09:00:00.000Z')
  t.equal(skew.sentAt, '2024-05-01T09:00:02.500Z')

  const envelope = norm({ type: 'track', event: 'E', userId: 'u', timestamp: '2024-05-01T09:00:00+02:00' }, { sentAt: '2024-05-01T09:00:10+02:00' })
  t.equal(envelope.timestamp, '2024-05-01T11:59:50.000Z', 'envelope sentAt; offsets honoured')
  t.equal(envelope.originalTimestamp, '2024-05-01T07:00:00.000Z', 'timestamp stands in for originalTimestamp, in UTC')

  const both = norm({ type: 'track', event: 'E', userId: 'u', originalTimestamp: '2024-05-01T09:00:00Z', timestamp: '2000-01-01T00:00:00Z', sentAt: '2024-05-01T09:00:01Z' })
  t.equal(both.timestamp, '2024-05-01T11:59:59.000Z', 'originalTimestamp wins over a client timestamp')

  const noSent = norm({ type: 'track', event: 'E', userId: 'u', timestamp: '2023-01-01T00:00:00Z' })
  t.equal(noSent.timestamp, '2023-01-01T00:00:00.000Z', 'without sentAt a historical timestamp is kept (imports)')

  const dates = norm({ type: 'track', event: 'E', userId: 'u', timestamp: new Date('2024-01-02T03:04:05Z') })
  t.equal(dates.timestamp, '2024-01-02T03:04:05.000Z', 'a Date from backend code')

  t.match(failure(() => norm({ type: 'track', event: 'E', userId: 'u', timestamp: new Date('nope') })), { code: 'invalid_event', message: /^timestamp: / })
  t.match(failure(() => norm({ type: 'track', event: 'E', userId: 'u', originalTimestamp: 'Tuesday' })), { code: 'invalid_event', message: /^originalTimestamp: must be an ISO-8601/ })
  t.match(failure(() => norm({ type: 'track', event: 'E', userId: 'u' }, { sentAt: 'later', where: 'batch[4]' })), { message: /^sentAt: / }, 'an envelope sentAt is named as such')
  t.match(failure(() => norm({ type: 'track', event: 'E', userId: 'u', sentAt: 'later' }, { where: 'batch[4]' })), { message: /^batch\[4\]\.sentAt: / })
})

t.test('ids', async (t) => {
  const n = norm({ type: 'group', userId: 42, anonymousId: '', groupId: 7 })
  t.equal(n.userId, '42', 'numeric userId becomes a string')
  t.equal(n.anonymousId, null, 'empty anonymousId becomes null')
  t.equal((n as { groupId: unknown }).groupId, '7')
  t.equal((norm({ type: 'alias', userId: 'u', previousId: 9 }) as { previousId: unknown }).previousId, '9')
  t.equal(norm({ type: 'identify', anonymousId: 0 }).anonymousId, '0', 'the id 0 is an id')
  t.match(failure(() => norm({ type: 'identify', userId: '', anonymousId: null })), { code: 'invalid_event', status: 400, message: 'event: userId or anonymousId is required' })
  t.match(failure(() => norm({ type: 'identify' }, { where: 'batch[2]' })), { message: 'batch[2]: userId or anonymousId is required' })
})

t.test('context.ip', async (t) => {
  t.same(norm({ type: 'track', event: 'E', userId: 'u' }, { ip: '192.0.2.1' }).context, { ip: '192.0.2.1' })
  t.same(norm({ type: 'track', event: 'E', userId: 'u', context: { ip: '203.0.113.5' } }, { ip: '192.0.2.1' }).context, { ip: '203.0.113.5' })
  t.same(norm({ type: 'track', event: 'E', userId: 'u', context: { ip: '' } }, { ip: '192.0.2.1' }).context, { ip: '192.0.2.1' }, 'an empty ip is filled')
  t.same(norm({ type: 'track', event: 'E', userId: 'u', context: { ip: null } }, { ip: '192.0.2.1' }).context, { ip: '192.0.2.1' }, 'a null ip is filled')
  t.same(norm({ type: 'track', event: 'E', userId: 'u' }).context, {}, 'no request ip: an empty context')
})

t.test('type from the endpoint and from the body', async (t) => {
  t.equal(norm({ event: 'E', userId: 'u' }, { type: 'track' }).type, 'track')
  t.equal(norm({ type: 'track', event: 'E', userId: 'u' }, { type: 'track' }).type, 'track')
  t.match(failure(() => norm({ type: 'page', userId: 'u' }, { type: 'track' })), { message: /^type: is "page" but the endpoint is for track events/ })
  t.match(failure(() => norm({ type: 'purchase', userId: 'u' }, { where: 'batch[0]' })), { message: /^batch\[0\]\.type: must be one of track, identify, page, screen, group, alias$/ })
  t.match(failure(() => norm({ userId: 'u' })), { message: /^type: .*\(missing\)$/ })
  t.match(failure(() => norm('track')), { message: 'event: must be a JSON object' })
  t.match(failure(() => norm([], { where: 'batch[1]' })), { message: 'batch[1]: must be a JSON object' })
})

t.test('validation names the field, nested and in a batch', async (t) => {
  t.match(failure(() => norm({ type: 'track', event: 5, userId: 'u' }, { where: 'batch[3]' })), { code: 'invalid_event', message: /^batch\[3\]\.event: / })
  t.match(failure(() => norm({ type: 'track', userId: 'u' })), { message: 'event: is required' })
  t.match(failure(() => norm({ type: 'track', event: '', userId: 'u' })), { message: /^event: / }, 'an empty event name')
  t.match(failure(() => norm({ type: 'identify', userId: 'u', traits: 'vip' })), { message: /^traits: / })
  t.match(failure(() => norm({ type: 'identify', userId: 'u', integrations: [] })), { message: /^integrations: / })
  t.match(failure(() => norm({ type: 'page', userId: 'u', name: 5 })), { message: /^name: / })
  t.match(failure(() => norm({ type: 'group', userId: 'u', groupId: { id: 1 } })), { message: /^groupId: / })
  t.match(failure(() => norm({ type: 'alias', userId: 'u' })), { message: 'previousId: is required' })
  t.match(failure(() => norm({ type: 'track', event: 'E', userId: 'u', messageId: 5 })), { message: /^messageId: / })
  t.match(norm({ type: 'track', event: 'E', userId: 'u', messageId: '' }).messageId, /^[0-9a-f-]{36}$/, 'an empty messageId is missing: one is generated')
})

t.test('extra fields are kept, known ones completed in place', async (t) => {
  const raw = { type: 'screen', anonymousId: 'a', name: 'Home', channel: 'mobile', version: 2, properties: { a: 1 } }
  const n = norm(raw)
  t.equal(n, raw as unknown, 'normalized in place (callers that need their object copy it first)')
  t.equal(n.channel, 'mobile')
  t.equal(n.version, 2)
  t.same(n.properties, { a: 1 })
})
