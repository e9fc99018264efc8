/**
 * Rules are untrusted data: strings in them stay strings, paths never reach a
 * prototype, and nothing here pollutes Object.prototype.
 */
import t from 'tap'
import { ConfigError } from '../src/errors.js'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

const INJECTIONS = [
  '"); process.exit(1); //',
  "'); process.exit(1); //",
  '`); process.exit(1); //',
  '${process.exit(1)}',
  '\\"); process.exit(1); //',
  '\u2028process.exit(1)//',
  '*/ process.exit(1) /*',
]

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.teardown(() => {
  // Checked once more after every test of this file has run.
  if (({} as Record<string, unknown>).polluted !== undefined) throw new Error('Object.prototype was polluted')
})

t.test('strings in set values and when literals stay data', async (t) => {
  const cap = captureDestination('cap')
  const policies = INJECTIONS.flatMap((s, i) => [
    { name: `set-${i}`, then: { set: [{ path: `properties.v${i}`, value: s }, { path: `properties.e${i}`, expr: { cat: [s, { var: 'event' }] } }] } },
    { name: `when-${i}`, when: { '==': [{ var: 'properties.probe' }, s] }, then: { set: [{ path: `properties.hit${i}`, value: true }] } },
  ])
  const router = createRouter({ logLevel: 'silent', sources: [{ name: 'web', writeKey: 'wk_sec' }], policies, destinations: [{ name: 'cap', type: cap.plugin, delivery: { batch: { maxWaitMs: 0 } } }] })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const { base } = await listen(t, router.handler())
  const batch = [
    { type: 'track', event: 'E', userId: 'u', messageId: 's-1', properties: { probe: INJECTIONS[0] } },
    { type: 'track', event: 'E', userId: 'u', messageId: 's-2', properties: { probe: 'nothing' } },
  ]
  const reply = await send(`${base}/v1/batch`, { headers: { Authorization: basic('wk_sec') }, body: { batch } })
  t.equal(reply.status, 200)
  await router.close({ timeoutMs: 5000 })
  t.equal(cap.events.length, 2, 'the process is alive and both events arrived')
  const [first, second] = cap.events.map((e) => e.properties as Record<string, unknown>)
  INJECTIONS.forEach((s, i) => {
    t.equal(first![`v${i}`], s, `set value ${i} is the literal string`)
    t.equal(first![`e${i}`], s + 'E', `expr ${i} concatenates the literal string`)
  })
  t.equal(first!.hit0, true, 'a when literal compares as a string')
  t.same(Object.keys(first!).filter((k) => k.startsWith('hit')), ['hit0'])
  t.same(Object.keys(second!).filter((k) => k.startsWith('hit')), [])
})

t.test('prototype paths are refused at config time, wherever a path goes', async (t) => {
  const bad: Array<{ config: Parameters<typeof createRouter>[0]; path: string }> = [
    { config: { policies: [{ then: { redact: ['__proto__.polluted'] } }] }, path: '/policies/0/then/redact/0' },
    { config: { policies: [{ then: { hash: ['traits.constructor.prototype'] } }] }, path: '/policies/0/then/hash/0' },
    { config: { policies: [{ then: { mask: { paths: ['a', 'b["__proto__"]'] } } }] }, path: '/policies/0/then/mask/paths/1' },
    { config: { policies: [{ then: { allow: ['properties.prototype'] } }] }, path: '/policies/0/then/allow/0' },
    { config: { policies: [{ then: { set: [{ path: '__proto__.polluted', value: 'yes' }] } }] }, path: '/policies/0/then/set/0/path' },
    { config: { policies: [{ then: { default: [{ path: 'constructor.prototype.polluted', value: 'yes' }] } }] }, path: '/policies/0/then/default/0/path' },
    { config: { consent: { fields: { '__proto__.polluted': 'marketing' } } }, path: '/consent/fields/__proto__.polluted' },
    {
      config: { destinations: [{ name: 'c', type: 'console', policies: [{ then: [{ redact: ['**.__proto__'] }] }] }] },
      path: '/destinations/0/policies/0/then/0/redact/0',
    },
  ]
  for (const b of bad) {
    const err = caught(() => createRouter({ logLevel: 'silent', ...b.config }))
    t.ok(err instanceof ConfigError, `${b.path}: refused`)
    t.equal((err as ConfigError | undefined)?.path, b.path)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('a JSON-Logic var on a prototype key reads nothing', async (t) => {
  const cap = captureDestination('cap')
  const router = createRouter({
    logLevel: 'silent',
    policies: [
      { name: 'proto', when: { '!!': [{ var: '__proto__' }] }, then: { set: [{ path: 'properties.saw', value: 'proto' }] } },
      { name: 'ctor', when: { '!!': [{ var: 'properties.constructor' }] }, then: { set: [{ path: 'properties.saw', value: 'ctor' }] } },
    ],
    destinations: [{ name: 'cap', type: cap.plugin }],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const r = router.evaluate({ type: 'track', event: 'E', userId: 'u', properties: {} })
  t.same(r.source.fired, [])
  t.equal((r.event.properties as Record<string, unknown>).saw, undefined)
})

t.test('hostile event keys through every action never reach Object.prototype', async (t) => {
  const cap = captureDestination('cap')
  const router = createRouter({
    logLevel: 'silent',
    sources: [{ name: 'web', writeKey: 'wk_sec2' }],
    pii: { action: 'hash' },
    consent: { fields: { '**.secret': 'marketing' }, missing: 'allow' },
    policies: [
      { then: { redact: ['**.polluted'] } },
      { then: { hash: ['properties.*'] } },
      { then: { mask: ['**.ip'] } },
      { then: { default: [{ path: 'properties.x.y', value: 1 }] } },
    ],
    destinations: [{ name: 'cap', type: cap.plugin, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const { base } = await listen(t, router.handler())
  // The intake refuses `__proto__` keys outright; `constructor`/`prototype` as plain keys pass it.
  const proto = await send(`${base}/v1/batch`, {
    headers: { Authorization: basic('wk_sec2'), 'Content-Type': 'application/json' },
    body: '{"batch":[{"type":"track","event":"E","userId":"u","properties":{"__proto__":{"polluted":"yes"}}}]}',
  })
  t.equal(proto.status, 400)
  const plain = await send(`${base}/v1/batch`, {
    headers: { Authorization: basic('wk_sec2') },
    body: { batch: [{ type: 'track', event: 'E', userId: 'u', messageId: 'h-1', properties: { constructor: { name: 'x' }, prototype: 'p', secret: 's', ip: '10.1.2.3' } }] },
  })
  t.equal(plain.status, 200)
  await router.close({ timeoutMs: 5000 })
  t.equal(cap.events.length, 1)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(({} as Record<string, unknown>).y, undefined)
  t.equal(({} as Record<string, unknown>).x, undefined)
})
