// Domain operations and the user-extensible registry.
import { createHash } from 'node:crypto';
import t from 'tap';
import {
  compileRule,
  createCompiler,
  createOperations,
  JsonLogicCompileError,
  registerOperation,
  REGEX_MAX_INPUT,
  REGEX_MAX_PATTERN,
} from '../src/policy/jsonlogic/index.js';

const run = (rule: unknown, data: unknown = {}) => compileRule(rule)(data);

t.test('lower, upper, trim', async (tt) => {
  tt.equal(run({ lower: { var: 'e' } }, { e: 'Jane.Doe@Example.COM' }), 'jane.doe@example.com');
  tt.equal(run({ upper: 'abc' }), 'ABC');
  tt.equal(run({ trim: { var: 'e' } }, { e: '  a b  ' }), 'a b');
  tt.equal(run({ lower: { var: 'missing' } }), null, 'non-strings give null');
  tt.equal(run({ trim: 5 }), null);
  tt.equal(run({ lower: { trim: { var: 'e' } } }, { e: ' X@Y.Z ' }), 'x@y.z');
});

t.test('sha256 (hex)', async (tt) => {
  tt.equal(run({ sha256: 'abc' }), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const email = 'jane.doe@example.com';
  tt.equal(run({ sha256: { lower: { trim: { var: 'e' } } } }, { e: ` Jane.Doe@Example.com ` }),
    createHash('sha256').update(email).digest('hex'));
  tt.equal(run({ sha256: 42 }), createHash('sha256').update('42').digest('hex'));
  tt.equal(run({ sha256: { var: 'nope' } }), null);
  tt.equal(run({ sha256: 'é' }), createHash('sha256').update('é', 'utf8').digest('hex'), 'UTF-8');
});

t.test('regex_test', async (tt) => {
  tt.equal(run({ regex_test: ['^[^@]+@example\\.com$', { var: 'e' }] }, { e: 'a@example.com' }), true);
  tt.equal(run({ regex_test: ['^[^@]+@example\\.com$', { var: 'e' }] }, { e: 'a@example.org' }), false);
  tt.equal(run({ regex_test: ['^abc$', 'ABC', 'i'] }), true, 'flags');
  tt.equal(run({ regex_test: ['^\\d+$', 123] }), true, 'numbers are tested as text');
  tt.equal(run({ regex_test: ['a', { var: 'x' }] }, { x: null }), false);
  tt.equal(run({ regex_test: ['a', { var: 'x' }] }, { x: 'a'.repeat(REGEX_MAX_INPUT + 1) }), false, 'over-long input never matches');
  tt.equal(run({ regex_test: ['a$', { var: 'x' }] }, { x: 'a'.repeat(REGEX_MAX_INPUT) }), true, 'input at the bound is tested');
  // Computed patterns are compiled at run time (cached); bad ones do not match.
  tt.equal(run({ regex_test: [{ var: 'p' }, 'abc'] }, { p: 'b' }), true);
  tt.equal(run({ regex_test: [{ var: 'p' }, 'abc'] }, { p: '(' }), false);
  tt.equal(run({ regex_test: [{ var: 'p' }, 'abc'] }, { p: 'a'.repeat(REGEX_MAX_PATTERN + 1) }), false);
  // Literal patterns are compiled once, at compile time: errors name the place.
  for (const rule of [
    { and: [true, { regex_test: ['(', 'x'] }] },
    { regex_test: ['a'.repeat(REGEX_MAX_PATTERN + 1), 'x'] },
    { regex_test: ['a', 'x', 'g'] },
    { regex_test: [5, 'x'] },
  ]) {
    tt.throws(() => compileRule(rule), { code: 'JSONLOGIC_INVALID_ARGUMENT', operator: 'regex_test' });
  }
  try {
    compileRule({ and: [true, { regex_test: ['(', 'x'] }] });
  } catch (error) {
    tt.equal((error as JsonLogicCompileError).pointer, '/and/1/regex_test');
  }
});

t.test('starts_with, ends_with', async (tt) => {
  tt.equal(run({ starts_with: [{ var: 'p' }, '/checkout'] }, { p: '/checkout/pay' }), true);
  tt.equal(run({ starts_with: [{ var: 'p' }, '/checkout'] }, { p: '/cart' }), false);
  tt.equal(run({ ends_with: [{ var: 'e' }, '@example.com'] }, { e: 'a@example.com' }), true);
  tt.equal(run({ ends_with: [5, '5'] }), false, 'non-strings are false');
});

t.test('ip_in_cidr (IPv4, IPv6, lists)', async (tt) => {
  const rule = { ip_in_cidr: [{ var: 'ip' }, ['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32']] };
  tt.equal(run(rule, { ip: '10.1.2.3' }), true);
  tt.equal(run(rule, { ip: '192.168.4.5' }), true);
  tt.equal(run(rule, { ip: '172.16.0.1' }), false);
  tt.equal(run(rule, { ip: '2001:db8:1::1' }), true);
  tt.equal(run(rule, { ip: '2001:db9::1' }), false);
  tt.equal(run(rule, { ip: 'not an ip' }), false);
  tt.equal(run(rule, { ip: null }), false);
  tt.equal(run({ ip_in_cidr: ['203.0.113.7', '203.0.113.7'] }), true, 'a single address');
  tt.equal(run({ ip_in_cidr: [{ var: 'ip' }, { var: 'nets' }] }, { ip: '10.0.0.1', nets: ['10.0.0.0/24'] }), true, 'computed lists');
  tt.equal(run({ ip_in_cidr: [{ var: 'ip' }, { var: 'nets' }] }, { ip: '10.0.0.1', nets: ['bogus'] }), false);
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fe80::/129', '10.0.0.0/-1', '10.0.0.0/8x', 42]) {
    tt.throws(() => compileRule({ ip_in_cidr: [{ var: 'ip' }, bad] }), { code: 'JSONLOGIC_INVALID_ARGUMENT' }, `rejects ${bad}`);
  }
});

t.test('date_before, date_after, days_since', async (tt) => {
  const iso = '2025-05-01T12:00:00.000Z';
  const ms = Date.parse(iso);
  tt.equal(run({ date_before: [{ var: 't' }, '2025-06-01'] }, { t: iso }), true);
  tt.equal(run({ date_after: [{ var: 't' }, ms - 1] }, { t: iso }), true, 'epoch millis');
  tt.equal(run({ date_after: [{ var: 't' }, ms] }, { t: iso }), false, 'strict');
  tt.equal(run({ date_before: ['garbage', '2025-01-01'] }), false, 'invalid dates compare false');
  tt.equal(run({ date_after: [null, 0] }), false);
  tt.equal(run({ days_since: [{ var: 't' }, '2025-05-11T11:59:59Z'] }, { t: iso }), 9, 'whole days, floored');
  tt.equal(run({ days_since: [{ var: 't' }, ms + 10 * 86_400_000] }, { t: iso }), 10);
  tt.equal(run({ days_since: 'nope' }), null);
  const now = Date.now();
  const days = run({ days_since: [now - 3 * 86_400_000 - 1000] });
  tt.equal(days, 3, 'defaults to the current time (not folded at compile time)');
});

t.test('registries are separate and user-extensible', async (tt) => {
  const a = createOperations();
  const b = createOperations({ domain: false });
  tt.ok(a.has('sha256'));
  tt.notOk(b.has('sha256'), 'domain: false leaves only the json-logic-js operations');
  tt.ok(b.has('cat') && b.has('in') && b.has('log'));

  let calls = 0;
  registerOperation(a, 'domain_of', (email: unknown) => {
    calls++;
    return typeof email === 'string' ? (email.split('@')[1] ?? null) : null;
  }, { pure: true, arity: [1, 1] });
  tt.equal(compileRule({ domain_of: { var: 'e' } }, { operations: a })({ e: 'x@y.com' }), 'y.com');
  tt.throws(() => compileRule({ domain_of: 'x@y.com' }, { operations: b }), { code: 'JSONLOGIC_UNKNOWN_OPERATOR' },
    'another registry does not see it');
  tt.throws(() => compileRule({ domain_of: ['a', 'b'] }, { operations: a }), { code: 'JSONLOGIC_ARITY' });

  // Pure operations with constant arguments are folded at compile time.
  calls = 0;
  const folded = compileRule({ '==': [{ domain_of: 'q@folded.example' }, { var: 'd' }] }, { operations: a });
  tt.equal(calls, 1, 'evaluated once while compiling');
  folded({ d: 'folded.example' });
  folded({ d: 'x' });
  tt.equal(calls, 1, 'not evaluated again');
  tt.equal(folded({ d: 'folded.example' }), true);
  tt.notMatch(folded.source, /q@folded/, 'the folded value replaced the call');

  // Impure operations are never folded.
  let ticks = 0;
  a.add('tick', () => ++ticks, { pure: false, arity: [0, 0], returns: 'number' });
  const tick = compileRule({ '+': [{ tick: [] }, 0] }, { operations: a });
  tt.equal(tick({}), 1);
  tt.equal(tick({}), 2);

  // The cache is per registry and follows additions.
  const ops = createOperations();
  tt.throws(() => compileRule({ later: 1 }, { operations: ops }), { code: 'JSONLOGIC_UNKNOWN_OPERATOR' });
  ops.add('later', (x: unknown) => x, { pure: true });
  tt.equal(compileRule({ later: [{ var: 'v' }] }, { operations: ops })({ v: 7 }), 7);
  tt.throws(() => ops.add('later', () => 1, { pure: true }), { code: 'JSONLOGIC_OPERATION_NAME' }, 'no silent replacement');
});

t.test('compiled rules are cached per rule', async (tt) => {
  const compiler = createCompiler({ cacheSize: 2 });
  const r1 = compiler.compile({ '==': [{ var: 'a' }, 1] });
  tt.equal(compiler.compile({ '==': [{ var: 'a' }, 1] }), r1, 'same rule, same function');
  tt.equal(compiler.compile(JSON.parse('{"==":[{"var":"a"},1]}')), r1, 'keyed by content, not identity');
  compiler.compile({ '==': [{ var: 'b' }, 1] });
  compiler.compile({ '==': [{ var: 'c' }, 1] });
  tt.not(compiler.compile({ '==': [{ var: 'a' }, 1] }), r1, 'least recently used entries are dropped');
  tt.not(compileRule({ '==': [0, { var: 'x' }] }), compileRule({ '==': [null, { var: 'x' }] }), 'null and 0 differ');
  tt.equal(compileRule({ '==': [1, 1] }).source.includes('return true'), true, 'constant rules fold to a constant');
});
