// Mappings are untrusted input: no string from one becomes code, no path reaches a
// prototype, outputs and work are bounded.
import t from 'tap'
import { compileMapping, DslCompileError, DslRuntimeError } from '../dsl/index.js'

const RUNTIME = new Set([
  'truthy', 'hasOwn', 'getPrototypeOf', 'ObjectProto', 'ArrayProto', 'StringProto', 'NumberProto', 'BooleanProto', 'arrayIndexOf',
  'stringIndexOf', 'parseFloat', 'str', 'isArray', 'getVar', 'missing', 'missingSome', 'toNumber', 'toText', 'inOp', 'substr', 'merge',
  'cat', 'min', 'max', 'getKey', 'mergeInto', 'concatArrays', 'ensureObject', 'setPath', 'sumValue', 'overBudget',
  'overLimit', 'arrayHas', 'stringHas', 'cost', 'own', 'mergeOwn', 'concatOwn', 'ArrayCtor', 'EMPTY', 'objectOf',
])
const JS = new Set(['use', 'strict', 'const', 'let', 'return', 'function', 'compiledRule', 'if', 'else', 'for', 'break', 'typeof', 'undefined', 'void', 'null', 'true', 'false', 'delete', 'length', 'push', 'call', 'steps', 'substr',
  // The pollution check at function entry, and the output counters (runtime.cost.n / .b).
  'guard', 'n', 'switch', 'case', 'default',
  // `new ArrayCtor(n)` for map; the mapping entry point and its `apply`.
  'new', 'compiledMapping', 'apply', 'output', 'bytes'])

/** Every identifier in generated code outside string literals: parameters, runtime names, generated temporaries. */
function foreignIdentifiers(source: string): string[] {
  const code = source.replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
  const ids = code.match(/[A-Za-z_$][\w$]*/g) ?? []
  return [...new Set(ids)].filter((id) => !RUNTIME.has(id) && !JS.has(id) && !/^(?:[tkf]\d+(?:_v)?|d|b|R|K|vp|vv)$/.test(id) && !/^t\d+_$/.test(id))
}

t.test('prototype keys can never be read or written statically', async (t) => {
  for (const src of [
    'on any { v = event.__proto__ }',
    'on any { v = event.properties.constructor.prototype }',
    'on any { v = event["__proto__"] }',
    'on any { __proto__ = 1 }',
    'on any { a.constructor = 1 }',
    'on any { a["prototype"] = 1 }',
    'on any { v = { __proto__: { polluted: true } } }',
    'on any { v = map(event.l, x => x.__proto__) }',
  ]) {
    const err = t.throws(() => compileMapping(src)) as DslCompileError
    t.equal(err.code, 'DSL_T104', src)
  }
})

t.test('computed keys, spreads and parsed JSON never reach a prototype', async (t) => {
  const m = compileMapping(`on any {
    a = event.properties[event.properties.k]
    b = event.properties.list[event.properties.k]
    c = keys(event.properties.o)
    d = { ...event.properties.o }
    e = parseJson(event.properties.json)
    ...event.properties.o
    f = { ...parseJson(event.properties.json) }
    g = values(event.properties.o)
    h = event.properties.o[event.properties.k2]
  }`)
  const o = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "ok": 1}') as object
  const out = m({ properties: { k: '__proto__', k2: 'constructor', list: [1], o, json: '{"__proto__": {"polluted": true}, "x": 1}' } })!
  t.same(out, { c: ['ok'], d: { ok: 1 }, e: { x: 1 }, ok: 1, f: { x: 1 }, g: [1] })
  t.equal(Object.getPrototypeOf(out), Object.prototype)
  t.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype untouched')
  t.notOk(Object.hasOwn(out, '__proto__'))
  t.notOk(Object.hasOwn(out.d as object, '__proto__'))
  t.notOk(Object.hasOwn(out.e as object, '__proto__'))
})

t.test('inherited properties of the event are not read', async (t) => {
  const src = 'on any { a = event.properties.toString; b = event.properties.inherited; c = event.properties.list.length; d = length(event.properties.list) }'
  // Router events are plain JSON; built-in prototype keys (toString …) are never read.
  t.same(compileMapping(src)({ properties: { list: [1, 2] } }), { c: 2, d: 2 }, 'an array has its own length')
  // Data with class instances: strictOwnProperties checks every read.
  const props = Object.create({ inherited: 'from the prototype' }) as Record<string, unknown>
  props.list = [1, 2]
  t.same(compileMapping(src, { strictOwnProperties: true })({ properties: props }), { c: 2, d: 2 })
})

t.test('a polluted Object.prototype does not leak into reads or outputs', async (t) => {
  const m = compileMapping('on any { a = event.properties.polluted; b = { ...event.properties }; c = event.properties.x.polluted }')
  ;(Object.prototype as Record<string, unknown>).polluted = 'yes'
  try {
    t.same(m({ properties: { x: {} } }), { b: { x: {} } })
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted
  }
})

t.test('code-injection strings in literals, keys and paths stay data', async (t) => {
  const evil = [
    '"); globalThis.pwned = 1; ("',
    "'); globalThis.pwned = 1; ('",
    '\\"); globalThis.pwned = 1; //',
    '*/ globalThis.pwned = 1 /*',
    '${globalThis.pwned = 1}',
    '\u2028globalThis.pwned = 1\u2029',
    '</script><script>globalThis.pwned=1</script>',
  ]
  for (const [i, s] of evil.entries()) {
    const lit = JSON.stringify(s)
    const src = `on any {\n  v = ${lit}\n  ${lit} = ${lit} & event.properties[${lit}]\n  o = { ${lit}: event[${lit}] ?? 1 }\n  p[${lit}].q = 2\n}`
    const m = compileMapping(src)
    const out = m({ properties: { [s]: 'x' } })!
    t.same(out, { v: s, [s]: `${s}x`, o: { [s]: 1 }, p: { [s]: { q: 2 } } }, `injection string #${i}`)
    t.equal((globalThis as { pwned?: unknown }).pwned, undefined)
    t.same(foreignIdentifiers(m.source), [], 'generated code names only parameters, runtime helpers and temporaries')
  }
})

t.test('generated code for the examples names only parameters, runtime helpers and temporaries', async (t) => {
  const { readFileSync } = await import('node:fs')
  for (const f of ['ga4.fp', 'meta-capi.fp']) {
    const m = compileMapping(readFileSync(new URL(`../dsl/examples/${f}`, import.meta.url), 'utf8'))
    t.same(foreignIdentifiers(m.source), [], f)
    t.notMatch(m.source, /\b(?:require|import|process|globalThis|Function|eval)\b(?![^"]*")/, f)
  }
})

t.test('huge outputs are refused with a coded error', async (t) => {
  const list = Array.from({ length: 300 }, (_, i) => i)
  const text = 'x'.repeat(30_000)
  const cases: Array<[string, unknown, string]> = [
    ['on any { v = map(event.properties.l, i => event.properties.s) }', { properties: { l: list, s: text } }, 'DSL_R101'],
    ['on any { v = map(event.properties.l, i => map(event.properties.l, j => j)) }', { properties: { l: list } }, 'DSL_R102'],
    ['on any { v = map(event.properties.l, i => map(event.properties.l, j => map(event.properties.l, k => 1))) }', { properties: { l: list } }, 'DSL_R103'],
    ['on any { v = event.properties }', { properties: deep(80) }, 'DSL_R104'],
  ]
  for (const [src, ev, code] of cases) {
    const err = t.throws(() => compileMapping(src)(ev)) as DslRuntimeError
    t.ok(err instanceof DslRuntimeError, src)
    t.equal(err.code, code, src)
  }
  // Limits are options.
  t.same(compileMapping('on any { v = event.properties }', { maxOutputDepth: 200 })({ properties: deep(80) }) !== null, true)
  t.throws(() => compileMapping('on any { v = event.properties.l }', { maxOutputNodes: 10 })({ properties: { l: list } }), { code: 'DSL_R102' })
})

t.test('deep nesting in the source is refused, not a stack overflow', async (t) => {
  const err = t.throws(() => compileMapping(`on any { v = ${'['.repeat(5000)}1${']'.repeat(5000)} }`)) as DslCompileError
  t.equal(err.code, 'DSL_S205')
  t.throws(() => compileMapping('x'.repeat(300_000)), { code: 'DSL_S106' })
})

t.test('outputs are fresh copies: no object is shared with the event', async (t) => {
  const m = compileMapping('on any { props = event.properties; list = event.properties.list; ...event.context }')
  const ev = { properties: { list: [{ a: 1 }] }, context: { ip: '1.2.3.4', nested: { x: 1 } } }
  const out = m(ev)!
  ;(out.props as { list: Array<{ a: number }> }).list[0]!.a = 2
  ;(out.nested as { x: number }).x = 2
  t.equal(ev.properties.list[0]!.a, 1)
  t.equal(ev.context.nested.x, 1)
  t.not(out.list, ev.properties.list)
})

t.test('extending an object copied from the event does not change the event', async (t) => {
  const m = compileMapping('on any { user = event.traits; user.extra = 1; if true { user.more = 2 } ; ...event.context; nested.y = 2 }')
  const ev = { traits: { name: 'n' }, context: { nested: { x: 1 } } }
  t.same(m(ev), { user: { name: 'n', extra: 1, more: 2 }, nested: { x: 1, y: 2 } })
  t.same(ev, { traits: { name: 'n' }, context: { nested: { x: 1 } } })
})

function deep(n: number): Record<string, unknown> {
  let o: Record<string, unknown> = { leaf: true }
  for (let i = 0; i < n; i++) o = { o }
  return o
}
