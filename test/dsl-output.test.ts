// The generated code builds a mapping's output itself (no copy afterwards): these
// check what the old copy guaranteed — nothing shared with the event, plain JSON
// values only, limits enforced — now that it is done while the output is built.
import t from 'tap'
import { compileMapping, DslRuntimeError } from '../dsl/index.js'

t.test('the output shares nothing with the event', async (t) => {
  const m = compileMapping(`on any {
    obj = event.properties.obj
    list = event.properties.list
    items = map(event.properties.list, x => x)
    let o = { inner: event.properties.obj }
    a = o
    b = o
    c = [...event.properties.list]
    d = { ...event.properties.obj }
  }`)
  const event = { properties: { obj: { k: { deep: 1 } }, list: [{ v: 1 }, [2]] } }
  const before = JSON.stringify(event)
  const out = m(event) as Record<string, any>
  t.same(out.obj, event.properties.obj)
  t.not(out.obj, event.properties.obj)
  t.not(out.obj.k, event.properties.obj.k)
  t.not(out.list, event.properties.list)
  t.not(out.list[0], event.properties.list[0])
  t.not(out.items[0], event.properties.list[0])
  t.not(out.a, out.b, 'a local used twice is two copies')
  t.not(out.c[0], event.properties.list[0])
  t.not(out.d.k, event.properties.obj.k)
  out.obj.k.deep = 2
  out.items[1].push(3)
  out.d.k.deep = 3
  t.equal(JSON.stringify(event), before, 'mutating the output leaves the event alone')
})

t.test('only plain JSON values reach the output', async (t) => {
  const m = compileMapping(`on any {
    inf = event.properties.inf
    nan = event.properties.nan
    date = event.properties.date
    fn = event.properties.fn
    list = [event.properties.inf, event.properties.fn, event.properties.ok]
    nested = event.properties.nested
    computed = 0 / 0
    sum = event.properties.ok + 1
    items = map(event.properties.l, (x, i) => x * i)
  }`)
  class Thing { x = 1 }
  const out = m({
    properties: {
      inf: Infinity, nan: NaN, date: new Date(0), fn: () => 1, ok: 1,
      nested: { a: Infinity, b: new Thing(), c: [NaN, undefined, 1], d: undefined, e: null },
      l: [1, 'x', 3],
    },
  })
  t.same(out, { list: [null, null, 1], nested: { c: [null, null, 1] }, sum: 2, items: [0, null, 6] })
  t.equal(JSON.stringify(out), '{"list":[null,null,1],"nested":{"c":[null,null,1]},"sum":2,"items":[0,null,6]}', 'JSON-exact: no undefined values')
})

t.test('assignments: parents, nulls and overwrites', async (t) => {
  t.same(compileMapping('on any { a.b = null; c = event.x }')({}), { a: {} }, 'a parent stays, null values are left out')
  t.same(compileMapping('on any { a = 1; a = null }')({}), {}, 'a later null removes the field')
  t.same(compileMapping('on any { a.b = 1; a = { c: 2 }; a.d = 3 }')({}), { a: { c: 2, d: 3 } })
  t.same(compileMapping('on any { a[2] = event.v; b = [1, ...event.l] }')({ v: 'x', l: [2, 3] }), { a: [null, null, 'x'], b: [1, 2, 3] })
  t.same(compileMapping('on any { if event.x == 1 { a = 1 } else { drop } }')({ x: 2 }), null)
  t.same(compileMapping('let base = { k: event.k }\non any { ...base; z = 1 }')({ k: 'v' }), { k: 'v', z: 1 })
  const m = compileMapping('on any { v = { a: event.a, b: event.b, c: event.c } }')
  // Every combination of absent fields keeps key order and leaves the absent ones out.
  for (let mask = 0; mask < 8; mask++) {
    const ev: Record<string, number> = {}
    if (mask & 1) ev.a = 1
    if (mask & 2) ev.b = 2
    if (mask & 4) ev.c = 3
    t.equal(JSON.stringify(m(ev)), JSON.stringify({ v: ev }), `fields ${mask}`)
  }
})

t.test('limits hold for what the mapping builds, shares or copies', async (t) => {
  const limit = (src: string, ev: unknown, code: string, options = {}) => {
    const err = t.throws(() => compileMapping(src, options)(ev)) as DslRuntimeError
    t.equal(err?.code, code, src)
  }
  limit('on any { a = { b: { c: 1 } } }', {}, 'DSL_R104', { maxOutputDepth: 2 })
  t.same(compileMapping('on any { a = { b: { c: 1 } } }', { maxOutputDepth: 3 })({}), { a: { b: { c: 1 } } })
  limit('on any { a.b.c = 1 }', {}, 'DSL_R104', { maxOutputDepth: 2 })
  limit('on any { a = map(event.l, x => [x]) }', { l: [1] }, 'DSL_R104', { maxOutputDepth: 2 })
  // A local holding a big value, placed many times: each placement counts.
  const big = 'x'.repeat(40_000)
  limit('on any { let s = event.s\n let l = [s, s, s, s, s, s, s, s]\n a = [l, l] }', { s: big }, 'DSL_R101')
  limit('on any { a = map(event.l, x => { k: x }) }', { l: Array.from({ length: 6000 }, (_, i) => i) }, 'DSL_R102')
  limit('on any { a = event.o }', { o: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])) }, 'DSL_R102', { maxOutputNodes: 20 })
  limit('on any { a = map(event.l, x => event.o) }', { l: [1, 2, 3], o: { s: 'y'.repeat(100_000) } }, 'DSL_R101')
  limit('on any { a = count(event.l, x => some(event.l, y => y == x)) }', { l: Array.from({ length: 500 }, (_, i) => i) }, 'DSL_R103')
})

t.test('apply() reports the approximate size of the output', async (t) => {
  const m = compileMapping('on track { a = event.properties.s; n = [1, 2, 3]; o = event.properties.o }\ndefault { drop }')
  const event = { type: 'track', properties: { s: 'z'.repeat(1000), o: { k: 'v' } } }
  const { output, bytes } = m.apply(event)
  const json = JSON.stringify(output).length
  t.ok(bytes >= json && bytes < json + 200, `${bytes} bytes for ${json} of JSON`)
  t.same(m.apply({ type: 'page' }), { output: null, bytes: 0 })
})

t.test('null fields are left out wherever a value comes from, in and out of loops', async (t) => {
  // Every kind of value a field can hold; the non-JSON ones and null become absent keys.
  class Thing { x = 1 }
  const kinds: unknown[] = [undefined, null, NaN, Infinity, new Date(0), () => 1, new Thing(), true, false, 0, 2.5, '', 's', { k: 1 }, [1, null]]
  const m = compileMapping(`on any {
    a = event.a
    b = event.b
    c = event.c
    v = { a: event.a, b: event.b, c: event.c }
    l = map(event.list, x => { a: x.a, b: x.b, c: x.c })
  }`)
  // The reference: plain JSON of the fields, in order, without null or non-JSON values.
  const plain = (v: unknown): unknown => {
    if (v === null || v === undefined || typeof v === 'function') return undefined
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
    if (Array.isArray(v)) return v.map((x) => plain(x) ?? null)
    if (typeof v === 'object') return Object.getPrototypeOf(v) === Object.prototype ? JSON.parse(JSON.stringify(v)) : undefined
    return v
  }
  const fields = (a: unknown, b: unknown, c: unknown) => {
    const out: Record<string, unknown> = {}
    for (const [k, v] of [['a', a], ['b', b], ['c', c]] as const) if (plain(v) !== undefined) out[k] = plain(v)
    return out
  }
  let failures = 0
  for (const a of kinds) {
    for (const b of kinds) {
      for (const c of kinds) {
        const got = m({ a, b, c, list: [{ a, b, c }, { a: c, b: a, c: b }] })
        const want = { ...fields(a, b, c), v: fields(a, b, c), l: [fields(a, b, c), fields(c, a, b)] }
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          if (failures++ < 5) t.equal(JSON.stringify(got), JSON.stringify(want), `a=${String(a)} b=${String(b)} c=${String(c)}`)
        }
        for (const o of [got, (got as { v: object }).v, ...(got as { l: object[] }).l]) {
          if (Object.values(o as object).some((x) => x === null || x === undefined)) failures++
        }
      }
    }
  }
  t.equal(failures, 0, `${kinds.length ** 3} combinations: keys in order, null and non-JSON values absent`)
})

t.test('what is placed in line and what is copied count against the same limits', async (t) => {
  const src = 'on any { s = event.s; o = event.o }'
  const ev = { s: 'x'.repeat(600), o: { t: 'y'.repeat(600) } }
  t.same(compileMapping(src, { maxOutputBytes: 2000 })(ev), ev, 'both fit')
  t.throws(() => compileMapping(src, { maxOutputBytes: 1000 })(ev), { code: 'DSL_R101' }, 'neither alone is over, together they are')
  const nodes = 'on any { a = [1, 2, 3, 4, 5, 6]; o = event.o }'
  const evNodes = { o: { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 } }
  t.same(compileMapping(nodes, { maxOutputNodes: 20 })(evNodes), { a: [1, 2, 3, 4, 5, 6], ...evNodes })
  t.throws(() => compileMapping(nodes, { maxOutputNodes: 12 })(evNodes), { code: 'DSL_R102' })
  // A copy that is over by itself stops while it is made, not after.
  const long = Array.from({ length: 100_000 }, (_, i) => i)
  t.throws(() => compileMapping('on any { l = event.l }', { maxOutputNodes: 1000 })({ l: long }), { code: 'DSL_R102' })
  // Totals never leak from one output into the next.
  const m = compileMapping(src, { maxOutputBytes: 2000 })
  t.throws(() => m({ s: 'x'.repeat(1500), o: { t: 'y'.repeat(1500) } }), { code: 'DSL_R101' })
  const small = m.apply({ s: 'a', o: { t: 'b' } })
  t.ok(small.bytes >= JSON.stringify(small.output).length && small.bytes < 200, `${small.bytes} bytes after a refused output`)
})
