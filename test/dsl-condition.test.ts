// A DSL condition compiles to the same shape as a JSON-Logic rule (a function of the
// event with `.source`), through the same IR and code generator, and means the same.
import t from 'tap'
import { compileCondition, DslCompileError } from '../src/index.js'
import { createCompiler } from '../src/policy/jsonlogic/index.js'
import { createPolicyRuntime } from '../src/policy/runtime.js'

const events = [
  { type: 'track', event: 'Order Completed', properties: { total: 150, products: [{ price: 0 }, { price: 5 }] } },
  { type: 'track', event: 'Order Completed', properties: { total: 50 } },
  { type: 'page', properties: {} },
  {},
]

t.test('same results as the equivalent JSON-Logic rule', async (t) => {
  const jl = createCompiler()
  const pairs: Array<[string, unknown]> = [
    ['event.type == "track" and event.properties.total > 100', { and: [{ '===': [{ var: 'type' }, 'track'] }, { '>': [{ var: 'properties.total' }, 100] }] }],
    ['event.event in ["Order Completed", "Order Refunded"]', { in: [{ var: 'event' }, ['Order Completed', 'Order Refunded']] }],
    ['not (event.properties.total >= 100) or event.type != "track"', { or: [{ '!': { '>=': [{ var: 'properties.total' }, 100] } }, { '!==': [{ var: 'type' }, 'track'] }] }],
    ['some(event.properties.products, p => p.price == 0)', { some: [{ var: 'properties.products' }, { '===': [{ var: 'price' }, 0] }] }],
  ]
  for (const [dsl, rule] of pairs) {
    const a = compileCondition(dsl)
    const b = jl.compile(rule)
    t.type(a, 'function')
    t.type(a.source, 'string')
    for (const ev of events) t.equal(Boolean(a(ev)), Boolean(b(ev)), `${dsl} on ${JSON.stringify(ev)}`)
  }
})

t.test("compiles against a policy runtime's operations", async (t) => {
  const runtime = createPolicyRuntime({})
  const cond = compileCondition('jsonlogic({"gpc": [{"var": ""}]}) or lower(event.event) == "x"', { operations: runtime.compiler.operations })
  t.equal(cond({ type: 'track', event: 'X', context: {} }), true)
  t.equal(cond({ type: 'track', event: 'Y', context: { gpc: true } }), true)
  t.equal(cond({ type: 'track', event: 'Y', context: {} }), false)
})

t.test('errors carry codes and positions', async (t) => {
  const err = t.throws(() => compileCondition('event.total > limit and lowr(event.x)')) as DslCompileError
  t.ok(err instanceof DslCompileError)
  t.same(err.errors.map((e) => [e.code, e.column]), [['DSL_T103', 15], ['DSL_T101', 25]])
  t.throws(() => compileCondition('event.type == '), { code: 'DSL_S202' })
  t.throws(() => compileCondition('a = 1'), { code: 'DSL_S201' })
})

t.test('a policy `when` may be a mapping-language condition', async (t) => {
  const { createRouter } = await import('../src/index.js')
  const router = createRouter({
    logLevel: 'silent',
    policies: [{ name: 'big-orders-only', when: 'event.event == "Order Completed" and event.properties.total < 100', then: 'drop' }],
  })
  t.teardown(() => router.close())
  t.equal(router.evaluate({ type: 'track', event: 'Order Completed', userId: 'u', properties: { total: 50 } }).dropped, true)
  t.equal(router.evaluate({ type: 'track', event: 'Order Completed', userId: 'u', properties: { total: 150 } }).dropped, false)
  t.throws(() => createRouter({ policies: [{ when: 'event.type ==', then: 'drop' }] }), { code: 'CONFIG_INVALID', path: '/policies/0/when' })
})
