// Rules are untrusted data: they must never read prototypes, never become
// code, and fail at compile time (with a location) when malformed.
import jsonLogic from 'json-logic-js';
import t from 'tap';
import {
  compileRule,
  createOperations,
  JsonLogicCompileError,
  type JsonLogicErrorCode,
} from '../src/policy/jsonlogic/index.js';

const protoNames = Object.getOwnPropertyNames(Object.prototype).sort();
const arrayProtoNames = Object.getOwnPropertyNames(Array.prototype).sort();
t.teardown(() => {
  // Runs after every test below: nothing may have been added to the prototypes.
  if (JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort()) !== JSON.stringify(protoNames)) {
    throw new Error('Object.prototype was modified');
  }
  if (JSON.stringify(Object.getOwnPropertyNames(Array.prototype).sort()) !== JSON.stringify(arrayProtoNames)) {
    throw new Error('Array.prototype was modified');
  }
});

/**
 * A printable, one-line description, bounded: some rules here are cyclic,
 * 100,000 levels deep or exponentially large, and TAP breaks on raw U+2028.
 */
function show(rule: unknown): string {
  let out = '';
  const walk = (v: unknown, depth: number): void => {
    if (out.length > 100 || depth > 8) {
      out += '…';
      return;
    }
    if (Array.isArray(v)) {
      out += '[';
      v.slice(0, 4).forEach((x, i) => {
        if (i) out += ',';
        walk(x, depth + 1);
      });
      out += v.length > 4 ? ',…]' : ']';
    } else if (v !== null && typeof v === 'object') {
      out += '{';
      Object.keys(v).slice(0, 4).forEach((k, i) => {
        out += `${i ? ',' : ''}${JSON.stringify(k)}:`;
        walk((v as Record<string, unknown>)[k], depth + 1);
      });
      out += '}';
    } else {
      out += typeof v === 'bigint' ? `${v}n` : String(JSON.stringify(v));
    }
  };
  walk(rule, 0);
  return out.slice(0, 120).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function compileError(rule: unknown): JsonLogicCompileError {
  try {
    compileRule(rule);
  } catch (error) {
    if (error instanceof JsonLogicCompileError) return error;
    throw new Error(`expected JsonLogicCompileError, got ${String(error)}`);
  }
  throw new Error(`expected a compile error for ${show(rule)}`);
}

function expectCode(tt: Pick<typeof t, 'equal' | 'match'>, rule: unknown, code: JsonLogicErrorCode, pointer?: string, operator?: string) {
  const error = compileError(rule);
  tt.equal(error.code, code, `code for ${show(rule)}`);
  if (pointer !== undefined) tt.equal(error.pointer, pointer, 'pointer');
  if (operator !== undefined) {
    tt.equal(error.operator, operator, 'operator');
    tt.match(error.message, JSON.stringify(operator), 'message names the operator');
  }
}

t.test('var never reads __proto__, constructor or prototype', async (tt) => {
  const data = JSON.parse('{"a":{"b":1},"__proto__":{"x":1},"constructor":{"name":"own"},"fn":{"prototype":{"p":1}}}');
  for (const path of ['__proto__', '__proto__.x', 'constructor', 'constructor.name', 'a.constructor', 'a.__proto__',
    'a.constructor.prototype', 'fn.prototype', 'fn.prototype.p', 'a.b.constructor']) {
    tt.equal(compileRule({ var: path })(data), null, `${path} → null`);
    tt.equal(compileRule({ var: [path, 'dflt'] })(data), 'dflt', `${path} → default`);
    // Computed paths are checked at run time.
    tt.equal(compileRule({ var: { cat: ['', path] } })(data), null, `computed ${path} → null`);
  }
  tt.same(compileRule({ missing: ['__proto__', 'a.constructor', 'a.b'] })(data), ['__proto__', 'a.constructor']);
  tt.equal(compileRule({ var: 'a.b' })(data), 1, 'ordinary paths still work');
});

t.test('only own properties are read, even when prototypes are polluted', async (tt) => {
  const data = { a: { b: 1 }, items: [1, 2], s: 'abc', n: 5 };
  const objectProto = Object.prototype as unknown as Record<string, unknown>;
  const arrayProto = Array.prototype as unknown as Record<string, unknown>;
  const numberProto = Number.prototype as unknown as Record<string, unknown>;
  const rules = ['polluted', 'a.polluted', 'items.polluted', 's.polluted', 'n.polluted'].map((p) => compileRule({ var: p }));
  const before = rules.map((r) => r(data));
  objectProto.polluted = 'yes';
  arrayProto.polluted = 'yes';
  numberProto.polluted = 'yes';
  try {
    // Same compiled functions, now with polluted prototypes (also after optimisation).
    for (let i = 0; i < 20_000; i++) for (const r of rules) r(data);
    tt.same(rules.map((r) => r(data)), [null, null, null, null, null], 'polluted keys are not visible');
    tt.same(before, [null, null, null, null, null]);
    tt.equal(compileRule({ var: 'polluted' })(data), null, 'nor to rules compiled afterwards');
    tt.same(compileRule({ missing: ['polluted'] })(data), ['polluted']);
  } finally {
    delete objectProto.polluted;
    delete arrayProto.polluted;
    delete numberProto.polluted;
  }
  for (const path of ['toString', 'a.hasOwnProperty', 'items.map', 's.toUpperCase', 'n.toFixed', 'valueOf', 'a.__defineGetter__']) {
    tt.equal(compileRule({ var: path })(data), null, `${path} (inherited) → null`);
  }
  tt.equal(compileRule({ var: 's.length' })(data), 3, 'own length of a string');
  tt.equal(compileRule({ var: 'items.length' })(data), 2, 'own length of an array');
  tt.equal(compileRule({ var: 'items.1' })(data), 2, 'array index');
  tt.equal(compileRule({ var: 's.0' })(data), 'a', 'string index');

  class WithGetter {
    own = 1;
    get inherited() {
      return 'from prototype';
    }
  }
  tt.equal(compileRule({ var: 'x.inherited' }, { strictOwnProperties: true })({ x: new WithGetter() }), null,
    'strictOwnProperties: class prototype properties are not read');
  tt.equal(compileRule({ var: 'x.own' }, { strictOwnProperties: true })({ x: new WithGetter() }), 1);
});

t.test('strings in rules never become code', async (tt) => {
  const g = globalThis as Record<string, unknown>;
  delete g.__pwned;
  const payloads = [
    '"); process.exit(1); ("',
    "'); globalThis.__pwned = 1; ('",
    '"; globalThis.__pwned = 1; "',
    '`; globalThis.__pwned = 1; `',
    '${globalThis.__pwned = 1}',
    '\u2028globalThis.__pwned = 1;\u2029',
    '*/ globalThis.__pwned = 1; /*',
    '\\"; globalThis.__pwned = 1; //',
    '</script><script>globalThis.__pwned = 1</script>',
    '\0\b\f\n\r\t\v\ud800',
    'vp = 1, vv = 2, d = 3',
  ];
  for (const p of payloads) {
    const data = { [p]: 'value-of-key', a: p, list: [p] };
    const rules: unknown[] = [
      p,
      { var: p },
      { var: [p, p] },
      { '==': [{ var: 'a' }, p] },
      { in: [p, { var: 'list' }] },
      { in: [{ var: 'a' }, [p, 'x']] },
      { cat: [p, { var: 'a' }] },
      { missing: [p, 'zz'] },
      { if: [{ var: 'a' }, p, 'no'] },
      { map: [{ var: 'list' }, { cat: [{ var: '' }, p] }] },
      [p, { var: 'a' }],
      { [p]: 1, other: p }, // a non-logic object literal
      { substr: [p, 1, -1] },
    ];
    for (const rule of rules) {
      const expected = jsonLogic.apply(rule as never, structuredClone(data));
      tt.same(compileRule(rule)(data), expected, show(rule));
    }
    const error = compileError({ [p]: [1, 2] });
    tt.equal(error.code, 'JSONLOGIC_UNKNOWN_OPERATOR');
    tt.equal(error.operator, p);
  }
  tt.equal(g.__pwned, undefined, 'no payload ran');
});

t.test('unknown operators and wrong arity fail at compile time, with a JSON pointer', async (tt) => {
  expectCode(tt, { frobnicate: [1] }, 'JSONLOGIC_UNKNOWN_OPERATOR', '/frobnicate', 'frobnicate');
  expectCode(tt, { and: [true, { in: ['a', { nope: 1 }] }] }, 'JSONLOGIC_UNKNOWN_OPERATOR', '/and/1/in/1/nope', 'nope');
  expectCode(tt, { and: [true, { '==': [1] }] }, 'JSONLOGIC_ARITY', '/and/1/==', '==');
  expectCode(tt, { '!': [1, 2] }, 'JSONLOGIC_ARITY', '/!', '!');
  expectCode(tt, { map: [[1]] }, 'JSONLOGIC_ARITY', '/map', 'map');
  expectCode(tt, { reduce: [[1], 1, 2, 3] }, 'JSONLOGIC_ARITY', '/reduce', 'reduce');
  expectCode(tt, { var: ['a', 1, 2] }, 'JSONLOGIC_ARITY', '/var', 'var');
  expectCode(tt, { '*': [] }, 'JSONLOGIC_ARITY', '/*', '*');
  expectCode(tt, { and: [] }, 'JSONLOGIC_ARITY', '/and', 'and');
  expectCode(tt, { or: [{ 'a/b~c': 1 }] }, 'JSONLOGIC_UNKNOWN_OPERATOR', '/or/0/a~1b~0c', 'a/b~c');
  expectCode(tt, { 'math.max': [1, 2] }, 'JSONLOGIC_UNKNOWN_OPERATOR', '/math.max');
  const error = compileError({ if: [true, { '>': [1, 2, 3] }] });
  tt.match(error.message, /JSONLOGIC_ARITY/);
  tt.match(error.message, /\/if\/1\/>/);
});

t.test('method is refused', async (tt) => {
  expectCode(tt, { method: ['abc', 'toUpperCase'] }, 'JSONLOGIC_FORBIDDEN_OPERATOR', '/method', 'method');
  expectCode(tt, { '!': { method: [{ var: 'a' }, 'constructor'] } }, 'JSONLOGIC_FORBIDDEN_OPERATOR', '/!/method', 'method');
  const ops = createOperations();
  tt.throws(() => ops.add('method', () => 1, { pure: true }), { code: 'JSONLOGIC_OPERATION_NAME' });
  for (const name of ['__proto__', 'constructor', 'var', 'and', 'in', 'a.b', '', 'x y', 'a'.repeat(65)]) {
    tt.throws(() => ops.add(name, () => 1, { pure: true }), { code: 'JSONLOGIC_OPERATION_NAME' }, `cannot register ${JSON.stringify(name)}`);
  }
});

t.test('pathological rules fail with coded errors, not stack overflows', async (tt) => {
  let deep: unknown = true;
  for (let i = 0; i < 100_000; i++) deep = { '!': [deep] };
  expectCode(tt, deep, 'JSONLOGIC_MAX_DEPTH');
  let deepArray: unknown = 1;
  for (let i = 0; i < 100_000; i++) deepArray = [deepArray];
  expectCode(tt, deepArray, 'JSONLOGIC_MAX_DEPTH');
  const cyclic: Record<string, unknown[]> = { and: [true] };
  cyclic.and!.push(cyclic);
  expectCode(tt, cyclic, 'JSONLOGIC_MAX_DEPTH');
  expectCode(tt, { and: Array.from({ length: 20_000 }, () => true) }, 'JSONLOGIC_MAX_NODES');
  // Within the limits, deep rules compile and run.
  let ok: unknown = { var: 'a' };
  for (let i = 0; i < 100; i++) ok = { '!!': [ok] };
  tt.equal(compileRule(ok)({ a: 1 }), true);
  tt.equal(compileRule({ and: Array.from({ length: 2000 }, () => ({ var: 'a' })) })({ a: 2 }), 2);
  tt.equal(compileRule({ or: Array.from({ length: 2000 }, (_, i) => ({ '==': [{ var: 'a' }, i] })) })({ a: 1999 }), true);
  tt.equal(compileRule({ if: Array.from({ length: 2001 }, (_, i) => (i % 2 ? i : { '==': [{ var: 'a' }, i] })) })({ a: 1998 }), 1999);
  tt.equal(compileRule({ '!': { or: Array.from({ length: 2000 }, () => ({ missing: ['x'] })) } })({ x: 1 }), true);
  let nested: unknown = { var: 'a' };
  for (let i = 0; i < 60; i++) nested = { if: [{ var: 'a' }, { '+': [nested, 1] }, { map: [[1], { var: 'b' }] }] };
  tt.equal(compileRule(nested)({ a: 1 }), 61, 'nesting up to the depth limit compiles');
  let shared: unknown = { var: 'a' };
  for (let i = 0; i < 60; i++) shared = { and: [shared, shared] }; // 2^60 nodes as a tree
  expectCode(tt, shared, 'JSONLOGIC_MAX_NODES');
});

t.test('non-JSON values in rules are rejected', async (tt) => {
  expectCode(tt, { '==': [() => 1, 1] }, 'JSONLOGIC_INVALID_RULE', '/==/0');
  expectCode(tt, { var: new Date() }, 'JSONLOGIC_INVALID_RULE', '/var');
  expectCode(tt, { '==': [undefined, 1] }, 'JSONLOGIC_INVALID_RULE', '/==/0');
  expectCode(tt, { in: [1n, [1]] }, 'JSONLOGIC_INVALID_RULE');
});

t.test('log writes nothing by default; a logger can be injected', async (tt) => {
  const original = console.log;
  let printed = 0;
  console.log = () => {
    printed++;
  };
  try {
    tt.equal(compileRule({ log: { var: 'email' } })({ email: 'someone@example.com' }), 'someone@example.com');
  } finally {
    console.log = original;
  }
  tt.equal(printed, 0, 'nothing reached console.log');
  const seen: unknown[] = [];
  const operations = createOperations({ logger: (v) => seen.push(v) });
  tt.equal(compileRule({ log: 'x' }, { operations })({}), 'x');
  tt.same(seen, ['x'], 'log is not folded away at compile time');
});

t.test('compiled functions and constants cannot be tampered with', async (tt) => {
  const rule = compileRule({ if: [{ var: 'a' }, { b: 1, c: [2] }, null] });
  tt.ok(Object.isFrozen(rule));
  const value = rule({ a: true }) as { b: number; c: number[] };
  tt.ok(Object.isFrozen(value) && Object.isFrozen(value.c), 'object literals are deep-frozen constants');
  const arr = compileRule([1, 2])({}) as number[];
  arr.push(3);
  tt.same(compileRule([1, 2])({}), [1, 2], 'array literals are fresh on every call');
  tt.notMatch(rule.source, /\bprocess\b|\brequire\b|\bglobalThis\b|\bimport\b/, 'generated code uses only its parameters');
});
