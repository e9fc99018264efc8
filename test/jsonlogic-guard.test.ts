// Reads of static keys are plain property loads after one check at function entry
// (codegen `#own` / `#entryGuard`): these tests pollute the built-in prototypes AFTER
// compiling, so the compiled functions must notice at their next call and run the
// variant that checks Object.hasOwn on every read.
import t from 'tap'
import { compileRule } from '../src/policy/jsonlogic/index.js'
import { compileMapping } from '../dsl/index.js'

type Proto = Record<string, unknown>
const protos: Array<[string, Proto]> = [
  ['Object.prototype', Object.prototype as unknown as Proto],
  ['Array.prototype', Array.prototype as unknown as Proto],
  ['String.prototype', String.prototype as unknown as Proto],
  ['Number.prototype', Number.prototype as unknown as Proto],
  ['Boolean.prototype', Boolean.prototype as unknown as Proto],
]

function polluted<T>(proto: Proto, key: string, fn: () => T, enumerable = true): T {
  if (enumerable) proto[key] = 'polluted'
  else Object.defineProperty(proto, key, { value: 'polluted', configurable: true, writable: true, enumerable: false })
  try {
    return fn()
  } finally {
    delete proto[key]
  }
}

const data = { a: { b: 1 }, items: [{ price: 60 }, 'text', 7, true, { other: 1 }], s: 'abc', n: 5, flag: true }

t.test('a key no built-in prototype has: plain reads, guarded at entry', async (t) => {
  const some = compileRule({ some: [{ var: 'items' }, { '==': [{ var: 'zzz' }, 'polluted'] }] })
  const read = compileRule({ var: 'a.zzz' })
  const missing = compileRule({ missing: ['a.zzz', 'zzz'] })
  // Optimised before the pollution.
  for (let i = 0; i < 20_000; i++) {
    some(data)
    read(data)
    missing(data)
  }
  for (const [name, proto] of protos) {
    for (const enumerable of [true, false]) {
      polluted(proto, 'zzz', () => {
        t.equal(some(data), false, `${name} (enumerable: ${enumerable}): no item has an own zzz`)
        t.equal(read(data), null, `${name}: a.zzz`)
        t.same(missing(data), ['a.zzz', 'zzz'], `${name}: missing`)
      }, enumerable)
    }
  }
  t.equal(read({ a: { zzz: 2 } }), 2, 'own values still read after the prototypes are clean again')
})

t.test('a key other built-in prototypes have (name, length, search)', async (t) => {
  const name = compileRule({ map: [{ var: 'l' }, { var: 'name' }] })
  const search = compileRule({ var: 'page.search' })
  const l = [{ name: 'own' }, {}, [1], 'str', new Error('x')]
  t.same(name({ l }), ['own', null, null, null, null], 'Error.prototype.name is not read')
  t.equal(search({ page: 'text' }), null, 'String.prototype.search is not read')
  t.equal(search({ page: { search: '?q=1' } }), '?q=1')
  polluted(Object.prototype as unknown as Proto, 'name', () => {
    t.same(name({ l }), ['own', null, null, null, null], 'a polluted Object.prototype.name is not read')
  })
  polluted(Array.prototype as unknown as Proto, 'name', () => {
    t.same(name({ l }), ['own', null, null, null, null], 'nor a polluted Array.prototype.name')
  })
})

t.test('null and undefined data read as absent', async (t) => {
  const rule = compileRule({ cat: [{ var: 'a.b' }, { var: ['c', 'x'] }] })
  t.equal(rule(null), 'x')
  t.equal(rule(undefined), 'x')
  t.equal(rule({ a: null, c: 'y' }), 'y')
  t.equal(rule({ a: 'str', c: null }), '')
})

t.test('mappings take the same guard', async (t) => {
  // A mapping checks inline (the optimiser folds the checks and depends on the
  // prototypes staying as they were): two compiles of the same text, each its own
  // generated code, both optimised before the pollution, through both entry points.
  const text = 'on any { a = event.properties.zzz; items = map(event.properties.l, (x, i) => { v: x.zzz, i }) }'
  const first = compileMapping(text)
  const second = compileMapping(`${text}\n// the same generated code`)
  t.not(first, second)
  t.not(first.source, second.source, 'each compile has code of its own')
  const ev = { properties: { l: [{}, { zzz: 1 }] } }
  for (let i = 0; i < 20_000; i++) {
    first(ev)
    second.apply(ev)
  }
  for (const [name, proto] of protos) {
    polluted(proto, 'zzz', () => {
      t.same(first(ev), { items: [{ i: 0 }, { v: 1, i: 1 }] }, name)
      t.same(second.apply(ev).output, { items: [{ i: 0 }, { v: 1, i: 1 }] }, `${name}: apply`)
    })
  }
  t.same(first({ properties: { zzz: 2 } }), { a: 2, items: [] }, 'own values still read after the prototypes are clean again')
})

t.test('in: lists, strings and needles json-logic-js finds', async (t) => {
  const long = Array.from({ length: 40 }, (_, i) => `v${i}`)
  t.equal(compileRule({ in: [{ var: 'x' }, long] })({ x: 'v39' }), true)
  t.equal(compileRule({ in: [{ var: 'x' }, long] })({ x: 'w' }), false)
  t.equal(compileRule({ in: ['b', { var: 'h' }] })({ h: ['a', 'b'] }), true)
  t.equal(compileRule({ in: ['b', { var: 'h' }] })({ h: 'abc' }), true)
  t.equal(compileRule({ in: ['b', { var: 'h' }] })({ h: '' }), false)
  t.equal(compileRule({ in: [{ var: 'n' }, { var: 'h' }] })({ n: null, h: [1, null] }), true)
  // eslint-disable-next-line no-sparse-arrays
  t.equal(compileRule({ in: [{ var: 'n' }, { var: 'h' }] })({ h: [1, , 2] }), false, 'a hole is not null')
})
