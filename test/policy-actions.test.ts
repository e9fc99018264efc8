/**
 * The policy engine: each action with its trace entries (paths, never values), rule
 * order, rules that throw, and configuration errors that name the config path.
 */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { ConfigError } from '../src/errors.js'
import { createRouter } from '../src/router.js'
import { compilePolicies, type PolicyTrace } from '../src/policy/engine.js'
import { createPolicyRuntime } from '../src/policy/runtime.js'
import { createCompiler, createOperations } from '../src/policy/jsonlogic/index.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const compiler = createPolicyRuntime({}).compiler

function run(rules: unknown[], event: Record<string, unknown>, scope: 'source' | 'destination' = 'source') {
  const policies = compilePolicies(rules, '/policies', compiler, scope)
  const trace: PolicyTrace = { scope, fired: [], actions: [], disabled: [] }
  const out = policies.run(event, trace)
  return { out, trace, event, policies }
}

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** No value of the event appears anywhere in the trace. */
function traceHasNoValues(t: Test, trace: PolicyTrace, values: string[]) {
  const text = JSON.stringify(trace)
  for (const v of values) t.notOk(text.includes(v), `the trace does not contain ${JSON.stringify(v)}`)
}

function sampleEvent(): Record<string, unknown> {
  return {
    type: 'track',
    event: 'Order Completed',
    messageId: 'm-1',
    timestamp: '2024-01-01T00:00:00.000Z',
    userId: 'u-1',
    context: { ip: '203.0.113.77', page: { url: 'https://shop.example/checkout' } },
    traits: { email: ' Jo@Example.COM ', phone: '+1 (555) 010-0000' },
    properties: {
      revenue: 120,
      currency: 'EUR',
      coupon: 'SECRET10',
      products: [
        { sku: 'A-1', name: 'Shirt', price: 20 },
        { sku: 'B-2', name: 'Shoes', price: 100 },
      ],
    },
  }
}

t.test('drop: the event is dropped, the trace names the rule', async (t) => {
  const { out, trace, policies } = run([{ name: 'no-tests', when: { '==': [{ var: 'event' }, 'Order Completed'] }, then: 'drop' }], sampleEvent())
  t.equal(out.drop, true)
  t.equal(trace.droppedBy, 'no-tests')
  t.same(trace.fired, ['no-tests'])
  t.match(policies.rules[0]!.stats, { evaluated: 1, fired: 1, dropped: 1, errors: 0 })

  const other = run([{ name: 'no-tests', when: { '==': [{ var: 'event' }, 'Other'] }, then: { drop: true } }], sampleEvent())
  t.equal(other.out.drop, false)
  t.equal(other.trace.droppedBy, undefined)
  t.same(other.trace.fired, [])
  t.match(other.policies.rules[0]!.stats, { evaluated: 1, fired: 0, dropped: 0 })

  const objForm = run([{ then: { drop: true } }], sampleEvent())
  t.equal(objForm.out.drop, true)
  t.equal(objForm.trace.droppedBy, 'rule[0]', 'an unnamed rule is named by its index')
})

t.test('drop stops the rules after it', async (t) => {
  const { out, policies, event } = run([{ name: 'd', then: 'drop' }, { name: 'after', then: { set: [{ path: 'properties.x', value: 1 }] } }], sampleEvent())
  t.equal(out.drop, true)
  t.equal(policies.rules[1]!.stats.evaluated, 0)
  t.equal((event.properties as Record<string, unknown>).x, undefined)
})

t.test('allow: keeps the envelope and the listed paths, including through arrays', async (t) => {
  const { event, trace } = run([{ name: 'minimal', then: { allow: ['userId', 'properties.products[*].sku', 'properties.revenue'] } }], sampleEvent())
  t.same(event, {
    type: 'track',
    event: 'Order Completed',
    messageId: 'm-1',
    timestamp: '2024-01-01T00:00:00.000Z',
    userId: 'u-1',
    properties: { revenue: 120, products: [{ sku: 'A-1' }, { sku: 'B-2' }] },
  })
  t.equal(trace.actions.length, 1)
  const entry = trace.actions[0]!
  t.equal(entry.rule, 'minimal')
  t.equal(entry.action, 'allow')
  for (const p of ['context', 'traits', 'properties.currency', 'properties.coupon', 'properties.products[0].name', 'properties.products[1].price']) {
    t.ok(entry.paths.includes(p), `removed ${p} is in the trace`)
  }
  t.notOk(entry.paths.includes('properties.products[0].sku'), 'a kept path is not in the trace')
  traceHasNoValues(t, trace, ['SECRET10', 'Example', 'Shirt', '203.0.113'])
})

t.test('redact: removes every match; the trace lists the concrete paths', async (t) => {
  const { event, trace } = run([{ name: 'r', then: { redact: ['traits.email', 'properties.products[*].price', 'context.nothing.here'] } }], sampleEvent())
  t.equal((event.traits as Record<string, unknown>).email, undefined)
  t.ok(Object.hasOwn(event.traits as object, 'phone'))
  t.same((event.properties as { products: unknown[] }).products, [{ sku: 'A-1', name: 'Shirt' }, { sku: 'B-2', name: 'Shoes' }])
  t.same(trace.actions, [
    { rule: 'r', action: 'redact', paths: ['traits.email'] },
    { rule: 'r', action: 'redact', paths: ['properties.products[0].price', 'properties.products[1].price'] },
  ], 'a path that matched nothing adds no entry')
  traceHasNoValues(t, trace, ['Jo@', '100'])
})

t.test('hash: normalized SHA-256; digests kept as they are', async (t) => {
  const digest = sha('already hashed')
  const ev = sampleEvent()
  ;(ev.traits as Record<string, unknown>).email_sha = digest
  const { event, trace } = run([{ name: 'h', then: [{ hash: ['traits.email', 'traits.phone'] }, { hash: { paths: ['traits.email_sha'], as: 'email' } }] }], ev)
  const traits = event.traits as Record<string, unknown>
  t.equal(traits.email, sha('jo@example.com'), 'e-mail trimmed and lower-cased')
  t.not(traits.email, sha(' Jo@Example.COM '))
  t.equal(traits.phone, sha('15550100000'), 'phone as E.164 digits')
  t.equal(traits.email_sha, digest, 'a SHA-256 digest is not hashed again')
  t.same(trace.actions, [
    { rule: 'h', action: 'hash', paths: ['traits.email'] },
    { rule: 'h', action: 'hash', paths: ['traits.phone'] },
  ], 'the untouched digest adds no entry')
  traceHasNoValues(t, trace, ['jo@', '555', digest])

  // `as` forces the normalization whatever the key says.
  const forced = run([{ then: { hash: { paths: ['properties.contact'], as: 'phone' } } }], { properties: { contact: '+44 20 7946 0000' } })
  t.equal((forced.event.properties as Record<string, unknown>).contact, sha('442079460000'))
  const email = run([{ then: { hash: { paths: ['properties.contact'], as: 'email' } } }], { properties: { contact: '  A@B.CO ' } })
  t.equal((email.event.properties as Record<string, unknown>).contact, sha('a@b.co'))
})

t.test('mask: IPv4 to /24, IPv6 to /48, partial strings', async (t) => {
  const ev = { context: { ip: '203.0.113.77', ip6: '2001:db8:85a3:8d3:1319:8a2e:370:7348', short6: '2001:db8::1' }, properties: { card: '4111111111111111', code: 'ABCDEFGH' } }
  const { event, trace } = run([
    { name: 'ips', then: { mask: ['context.ip', 'context.ip6', 'context.short6'] } },
    { name: 'card', then: { mask: { paths: ['properties.card'], keepStart: 0, keepEnd: 4 } } },
    { name: 'code', then: { mask: { paths: ['properties.code'], keepStart: 2, keepEnd: 2 } } },
  ], ev)
  const ctx = event.context as Record<string, string>
  t.equal(ctx.ip, '203.0.113.0')
  t.equal(ctx.ip6, '2001:db8:85a3::')
  t.equal(ctx.short6, '2001:db8:0::')
  const props = event.properties as Record<string, string>
  t.equal(props.card, '************1111')
  t.equal(props.code, 'AB****GH')
  t.same(trace.actions, [
    { rule: 'ips', action: 'mask', paths: ['context.ip'] },
    { rule: 'ips', action: 'mask', paths: ['context.ip6'] },
    { rule: 'ips', action: 'mask', paths: ['context.short6'] },
    { rule: 'card', action: 'mask', paths: ['properties.card'] },
    { rule: 'code', action: 'mask', paths: ['properties.code'] },
  ])
  traceHasNoValues(t, trace, ['203.0', '4111', 'ABC'])

  const plain = run([{ then: { mask: ['properties.name'] } }], { properties: { name: 'Jo' } })
  t.equal((plain.event.properties as Record<string, unknown>).name, 'J***', 'a non-IP keeps its first character and at least 3 stars')
})

t.test('set and default, with value and with a JSON-Logic expr', async (t) => {
  const ev = sampleEvent()
  ;(ev.properties as Record<string, unknown>).channel = ''
  const { event, trace } = run([
    { name: 's', then: { set: [{ path: 'properties.tier', value: { level: 'gold', tags: ['a'] } }, { path: 'properties.big', expr: { '>=': [{ var: 'properties.revenue' }, 100] } }] } },
    { name: 'd', then: { default: [{ path: 'properties.currency', value: 'USD' }, { path: 'properties.channel', value: 'web' }, { path: 'context.locale', expr: { cat: ['en-', { upper: [{ var: 'properties.currency' }] }] } }] } },
  ], ev)
  const props = event.properties as Record<string, unknown>
  t.same(props.tier, { level: 'gold', tags: ['a'] })
  t.equal(props.big, true)
  t.equal(props.currency, 'EUR', 'default leaves a present value alone')
  t.equal(props.channel, 'web', 'default fills an empty string')
  t.equal((event.context as Record<string, unknown>).locale, 'en-EUR')
  t.same(trace.actions, [
    { rule: 's', action: 'set', paths: ['properties.tier', 'properties.big'] },
    { rule: 'd', action: 'default', paths: ['properties.channel', 'context.locale'] },
  ])

  // A set value is copied for each event: changing one event's value does not leak into the next.
  const policies = compilePolicies([{ then: { set: [{ path: 'properties.tier', value: { level: 'gold' } }] } }], '/policies', compiler, 'source')
  const e1: Record<string, unknown> = {}
  policies.run(e1)
  ;((e1.properties as Record<string, unknown>).tier as Record<string, unknown>).level = 'changed'
  const e2: Record<string, unknown> = {}
  policies.run(e2)
  t.same(e2, { properties: { tier: { level: 'gold' } } })
})

t.test('disable: source scope only', async (t) => {
  const { out, trace } = run([{ name: 'no-ads', when: { '==': [{ var: 'properties.currency' }, 'EUR'] }, then: { disable: ['ads', 'crm'] } }], sampleEvent())
  t.same([...out.disabled].sort(), ['ads', 'crm'])
  t.same(trace.disabled, ['ads', 'crm'])
  t.equal(out.drop, false)

  const err = caught(() => compilePolicies([{ then: { disable: ['ads'] } }], '/destinations/0/policies', compiler, 'destination'))
  t.ok(err instanceof ConfigError)
  t.equal((err as ConfigError).path, '/destinations/0/policies/0/then/disable')
  const viaRouter = caught(() => createRouter({ logLevel: 'silent', destinations: [{ name: 'c', type: 'console', policies: [{ then: [{ disable: ['x'] }] }] }] }))
  t.ok(viaRouter instanceof ConfigError, 'createRouter refuses a destination policy with disable')
  t.equal((viaRouter as ConfigError).path, '/destinations/0/policies/0/then/0/disable')
})

t.test('ordered rules: later rules see earlier changes', async (t) => {
  const { event, trace } = run([
    { name: 'tag', then: { set: [{ path: 'properties.vip', value: true }] } },
    { name: 'hash-if-vip', when: { '==': [{ var: 'properties.vip' }, true] }, then: { hash: ['traits.email'] } },
    { name: 'redact-if-hashed', when: { '==': [{ var: 'traits.email' }, sha('jo@example.com')] }, then: { redact: ['traits.phone'] } },
    { name: 'never', when: { '==': [{ var: 'traits.phone' }, '+1 (555) 010-0000'] }, then: 'drop' },
  ], sampleEvent())
  t.same(trace.fired, ['tag', 'hash-if-vip', 'redact-if-hashed'])
  t.same(event.traits, { email: sha('jo@example.com') })
  t.equal(trace.droppedBy, undefined)
})

t.test('a rule whose when throws counts an error and does not fire', async (t) => {
  const ops = createOperations()
  ops.add('explode', () => {
    throw new Error('boom')
  }, { pure: false, arity: [0, 1] })
  const c = createCompiler({ operations: ops })
  const policies = compilePolicies([
    { name: 'broken', when: { explode: [] }, then: 'drop' },
    { name: 'next', then: { set: [{ path: 'properties.ok', value: 1 }] } },
  ], '/policies', c, 'source')
  const trace: PolicyTrace = { scope: 'source', fired: [], actions: [], disabled: [] }
  const ev: Record<string, unknown> = {}
  const out = policies.run(ev, trace)
  policies.run({})
  t.equal(out.drop, false)
  t.same(trace.fired, ['next'])
  t.same(ev, { properties: { ok: 1 } })
  t.same(policies.rules[0]!.stats, { evaluated: 2, fired: 0, dropped: 0, errors: 2 })
  t.same(policies.rules[1]!.stats, { evaluated: 2, fired: 2, dropped: 0, errors: 0 })
})

t.test('configuration errors name the config path', async (t) => {
  const cases: Array<{ name: string; policies: unknown[]; path: string; message: RegExp }> = [
    { name: 'a prototype path', policies: [{ then: 'drop', when: false }, { then: [{ redact: ['traits.email', 'a.__proto__.b'] }] }], path: '/policies/1/then/0/redact/1', message: /__proto__/ },
    { name: 'a bad path', policies: [{ then: 'drop', when: false }, { then: [{ redact: ['a..b'] }] }], path: '/policies/1/then/0/redact/0', message: /a\.\.b/ },
    { name: 'an unknown operator', policies: [{ when: { and: [true, { no_such_op: [1] }] }, then: 'drop' }], path: '/policies/0/when/and/1/no_such_op', message: /no_such_op/ },
    { name: 'an unknown action key', policies: [{ then: { frobnicate: ['a'] } }], path: '/policies/0/then/frobnicate', message: /unknown action "frobnicate"/ },
    { name: 'both value and expr', policies: [{ then: [{ set: [{ path: 'a', value: 1, expr: { var: 'b' } }] }] }], path: '/policies/0/then/0/set/0', message: /exactly one of value or expr/ },
    { name: 'neither value nor expr', policies: [{ then: [{ default: [{ path: 'a' }] }] }], path: '/policies/0/then/0/default/0', message: /exactly one of value or expr/ },
    { name: 'a bad expr', policies: [{ then: [{ set: [{ path: 'a', expr: { nope: [] } }] }] }], path: '/policies/0/then/0/set/0/expr/nope', message: /nope/ },
    { name: 'set through a wildcard', policies: [{ then: { set: [{ path: 'a[*].b', value: 1 }] } }], path: '/policies/0/then/set/0/path', message: /wildcard/ },
    { name: 'two keys in one action', policies: [{ then: [{ redact: ['a'], hash: ['b'] }] }], path: '/policies/0/then/0', message: /exactly one key/ },
    { name: 'drop with another key', policies: [{ then: { drop: true, redact: ['traits.email'] } }], path: '/policies/0/then', message: /exactly one key/ },
    { name: 'an unknown rule field', policies: [{ then: 'drop', unless: true }], path: '/policies/0/unless', message: /not a rule field/ },
    { name: 'a missing then', policies: [{ when: true }], path: '/policies/0/then', message: /required/ },
    { name: 'a bad hash kind', policies: [{ then: { hash: { paths: ['a'], as: 'shoe_size' } } }], path: '/policies/0/then/hash/as', message: /shoe_size/ },
    { name: 'a negative keepEnd', policies: [{ then: { mask: { paths: ['a'], keepEnd: -1 } } }], path: '/policies/0/then/mask/keepEnd', message: /non-negative/ },
    { name: 'an empty path list', policies: [{ then: { redact: [] } }], path: '/policies/0/then/redact', message: /non-empty/ },
  ]
  for (const c of cases) {
    const err = caught(() => createRouter({ logLevel: 'silent', policies: c.policies }))
    t.ok(err instanceof ConfigError, `${c.name}: a ConfigError`)
    t.equal((err as ConfigError).path, c.path, `${c.name}: names ${c.path}`)
    t.match((err as Error).message, c.message, `${c.name}: says what is wrong`)
    t.ok((err as Error).message.includes(c.path), `${c.name}: the message shows the path`)
  }

  const dest = caught(() => createRouter({ logLevel: 'silent', destinations: [{ name: 'c', type: 'console' }, { name: 'd', type: 'console', policies: [{ when: { or: [{ nope: [] }] }, then: 'drop' }] }] }))
  t.ok(dest instanceof ConfigError, 'a destination policy error')
  t.equal((dest as ConfigError).path, '/destinations/1/policies/0/when/or/0/nope')
})
