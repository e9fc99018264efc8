/**
 * Policy field paths: parsing, refusal of prototype keys and bad syntax, and the
 * get/set/delete/update walkers (arrays, `*`, `**`, own properties only).
 */
import t from 'tap'
import { compilePath, deleteAll, getAll, getPath, PathError, setPath, updateAll, visitPath } from '../src/policy/paths.js'

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('parsing', async (t) => {
  t.same(compilePath('a.b').segments, [{ kind: 'key', key: 'a' }, { kind: 'key', key: 'b' }])
  t.equal(compilePath('a.b').wild, false)
  t.same(compilePath('a[0]').segments, [{ kind: 'key', key: 'a' }, { kind: 'index', index: 0 }])
  t.same(compilePath('a[*].b').segments, [{ kind: 'key', key: 'a' }, { kind: 'any' }, { kind: 'key', key: 'b' }])
  t.equal(compilePath('a[*].b').wild, true)
  t.same(compilePath('a.*.b').segments, [{ kind: 'key', key: 'a' }, { kind: 'any' }, { kind: 'key', key: 'b' }])
  t.same(compilePath('**.email').segments, [{ kind: 'deep' }, { kind: 'key', key: 'email' }])
  t.equal(compilePath('**.email').wild, true)
  t.same(compilePath('a["x.y"]').segments, [{ kind: 'key', key: 'a' }, { kind: 'key', key: 'x.y' }])
  t.same(compilePath("a['x.y'].z").segments, [{ kind: 'key', key: 'a' }, { kind: 'key', key: 'x.y' }, { kind: 'key', key: 'z' }])
  t.same(compilePath('properties.products[12].sku').segments, [
    { kind: 'key', key: 'properties' },
    { kind: 'key', key: 'products' },
    { kind: 'index', index: 12 },
    { kind: 'key', key: 'sku' },
  ])
  t.equal(compilePath('a.b').source, 'a.b')
})

t.test('prototype keys are refused anywhere in a path, naming the path', async (t) => {
  const bad = [
    '__proto__',
    'a.__proto__',
    '__proto__.polluted',
    'a.constructor.prototype',
    'constructor',
    'prototype',
    'a.b.prototype',
    'a["__proto__"]',
    "a['constructor']",
    'a[*].__proto__.x',
    '**.__proto__',
  ]
  for (const p of bad) {
    const err = caught(() => compilePath(p))
    t.ok(err instanceof PathError, `${p} is refused`)
    t.match(err, { pathSource: p, code: 'POLICY_PATH_INVALID', message: /is not allowed/ }, p)
    t.ok((err as Error).message.includes(`"${p}"`), `the message names ${p}`)
  }
})

t.test('bad syntax is a PathError that names the path', async (t) => {
  const bad = ['', '.a', 'a.', 'a..b', 'a[', 'a[0', 'a[x]', 'a[-1]', 'a[1.5]', 'a[]', 'a[0].', 'a[0]b', 'a[*]b']
  for (const p of bad) {
    const err = caught(() => compilePath(p))
    t.ok(err instanceof PathError, `${JSON.stringify(p)} is refused`)
    t.equal((err as PathError | undefined)?.pathSource, p, 'the error names the path')
  }
  t.throws(() => compilePath(42 as unknown as string), PathError, 'a non-string')
  t.throws(() => compilePath('a.'.repeat(300) + 'b'), PathError, 'over 512 characters')
})

t.test('getPath and getAll', async (t) => {
  const ev = {
    traits: { email: 'a@b.co', address: { street: 'Main' } },
    properties: { products: [{ sku: 'A' }, { sku: 'B' }, { name: 'no sku' }], 'x.y': 1 },
    context: { a: { email: 'c1' }, b: { email: 'c2' }, c: 'flat' },
  }
  t.equal(getPath(ev, compilePath('traits.email')), 'a@b.co')
  t.equal(getPath(ev, compilePath('properties.products[1].sku')), 'B')
  t.equal(getPath(ev, compilePath('properties["x.y"]')), 1)
  t.equal(getPath(ev, compilePath('properties.products[7].sku')), undefined)
  t.equal(getPath(ev, compilePath('traits.email.length')), undefined, 'no property of a primitive')
  t.equal(getPath(ev, compilePath('traits.toString')), undefined, 'inherited properties are absent')
  t.same(getAll(ev, compilePath('properties.products[*].sku')), ['A', 'B'])
  t.same(getAll(ev, compilePath('context.*.email')), ['c1', 'c2'])
  t.same(getAll(ev, compilePath('**.email')).sort(), ['a@b.co', 'c1', 'c2'])
  t.same(getAll(ev, compilePath('**.street')), ['Main'])
  t.same(getAll(ev, compilePath('traits.email[*]')), [], 'a wildcard over a string matches nothing')
  t.same(getAll(ev, compilePath('properties.products.sku')), [], 'a key does not reach into an array')
  t.same(getAll(ev, compilePath('traits[0]')), [], 'an index does not reach into an object')
})

t.test('setPath creates containers and never writes prototypes', async (t) => {
  const o: Record<string, unknown> = {}
  t.equal(setPath(o, compilePath('a.b.c'), 1), true)
  t.same(o, { a: { b: { c: 1 } } })
  t.equal(setPath(o, compilePath('list[0].x'), 'y'), true)
  t.same(o.list, [{ x: 'y' }])
  t.equal(setPath(o, compilePath('a.b.c.d'), 2), false, 'a primitive on the way blocks it')
  t.same(o.a, { b: { c: 1 } }, 'nothing changed')
  t.throws(() => setPath(o, compilePath('a.*.c'), 1), PathError, 'no set through a wildcard')
  t.equal(({} as Record<string, unknown>).c, undefined)
})

t.test('deleteAll removes array items without holes, and the right ones', async (t) => {
  const o = { items: [{ keep: 1 }, { drop: true }, { keep: 2 }, { drop: true }, { drop: true }, { keep: 3 }] }
  // Delete items 1, 3 and 4 by index in one path each, then all `drop` flags by wildcard.
  const removed = deleteAll(o, compilePath('items[*].drop'))
  t.same(removed, ['items[1].drop', 'items[3].drop', 'items[4].drop'])
  t.same(o.items, [{ keep: 1 }, {}, { keep: 2 }, {}, {}, { keep: 3 }])

  const arr = { a: ['x0', 'x1', 'x2', 'x3', 'x4'] }
  t.same(deleteAll(arr, compilePath('a[*]')), ['a[0]', 'a[1]', 'a[2]', 'a[3]', 'a[4]'])
  t.same(arr.a, [])
  t.equal(arr.a.length, 0)

  const one = { a: ['x0', 'x1', 'x2'] }
  t.same(deleteAll(one, compilePath('a[1]')), ['a[1]'])
  t.same(one.a, ['x0', 'x2'])
  t.notOk(Object.keys(one.a).some((k) => !['0', '1'].includes(k)), 'no holes')

  // Several items of one array removed through a deeper wildcard: nested arrays.
  const nested = { m: [['a', 'b', 'c'], ['d', 'e']] }
  t.same(deleteAll(nested, compilePath('m[*][1]')), ['m[0][1]', 'm[1][1]'])
  t.same(nested.m, [['a', 'c'], ['d']])

  // Two sweeps reach a place along several routes: it is still removed once.
  const twice = { a: ['x', 'y', 'z'], b: { c: ['p', 'q'] } }
  t.same(deleteAll(twice, compilePath('**.**[1]')).sort(), ['a[1]', 'b.c[1]'])
  t.same(twice, { a: ['x', 'z'], b: { c: ['p'] } })
})

t.test('updateAll reports only the paths it changed', async (t) => {
  const o = { p: [{ sku: 'a' }, { sku: 'B' }, { other: 1 }] }
  const changed = updateAll(o, compilePath('p[*].sku'), (v) => String(v).toUpperCase())
  t.same(changed, ['p[0].sku'], 'B was already upper-case')
  t.same(o.p, [{ sku: 'A' }, { sku: 'B' }, { other: 1 }])
})

t.test('** sweeps are depth-bounded', async (t) => {
  let deep: Record<string, unknown> = { email: 'bottom' }
  for (let i = 0; i < 60; i++) deep = { n: deep }
  const root = { email: 'top', n: deep }
  const seen: string[] = []
  visitPath(root, compilePath('**.email'), (_p, _k, at) => seen.push(at), 32)
  t.same(seen, ['email'], 'the one at depth 61 is beyond the bound')
  const shallow = { a: { b: { email: 'x' } } }
  t.same(getAll(shallow, compilePath('**.email')), ['x'])
  const seen2: string[] = []
  visitPath(shallow, compilePath('**.email'), (_p, _k, at) => seen2.push(at), 1)
  t.same(seen2, [], 'depth 2 is beyond a bound of 1')
})

t.test('traversal visits only own properties; Object.prototype is untouched', async (t) => {
  const proto = { email: 'inherited', nested: { email: 'inherited-deep' } }
  const o = Object.create(proto) as Record<string, unknown>
  o.own = { email: 'own' }
  t.same(getAll(o, compilePath('**.email')), ['own'])
  t.same(getAll(o, compilePath('*')), [{ email: 'own' }])
  t.same(deleteAll(o, compilePath('email')), [], 'an inherited key is not deleted')
  t.equal(proto.email, 'inherited')
  t.same(updateAll(o, compilePath('nested.email'), () => 'changed'), [])
  t.equal(proto.nested.email, 'inherited-deep')

  // An own "__proto__" key (JSON.parse makes one) is never walked into or rewritten.
  const parsed = JSON.parse('{"__proto__": {"polluted": "yes", "email": "p"}, "a": {"email": "x"}}') as Record<string, unknown>
  t.same(getAll(parsed, compilePath('**.email')), ['x'])
  t.same(getAll(parsed, compilePath('*')), [{ email: 'x' }])
  deleteAll(parsed, compilePath('**.polluted'))
  updateAll(parsed, compilePath('*.*'), () => 'z')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'email'), false)
  t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false)
})
