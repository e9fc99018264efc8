// Differential property test: compiled rules against json-logic-js (the
// semantic reference) on random rules and data.
//
// JSONLOGIC_SEED=<n> replays a run; JSONLOGIC_RUNS=<n> changes the number of
// cases (default 10,000). A failure prints the shrunk rule and data.
//
// Excluded on purpose (documented deviations, covered by the security tests):
// - keys that only exist on prototypes (`toString`, `__proto__`, …): we read
//   own properties only;
// - `missing` keys that are objects: json-logic-js runs them as logic, we do not;
// - arity errors: json-logic-js ignores extra arguments, we reject them at
//   compile time, so the generator only builds well-formed calls;
// - `in` against data objects that have an `indexOf` key.
import fc from 'fast-check';
import jsonLogic from 'json-logic-js';
import t from 'tap';
import { compileRule } from '../src/policy/jsonlogic/index.js';

const seed = process.env.JSONLOGIC_SEED ? Number(process.env.JSONLOGIC_SEED) : Math.floor(Math.random() * 2 ** 31);
const numRuns = process.env.JSONLOGIC_RUNS ? Number(process.env.JSONLOGIC_RUNS) : 10_000;
console.log(`# jsonlogic differential: JSONLOGIC_SEED=${seed} JSONLOGIC_RUNS=${numRuns}`);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// ------------------------------------------------------------------ data
const key = fc.constantFrom('a', 'b', 'c', 'x', 'items', 'n', 's', '0', '1', 'current', 'accumulator');
const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, 1, -1, 2, 3.5, 10, 100, -0, 1e21),
  fc.integer({ min: -20, max: 200 }),
  fc.constantFrom<Json>('', 'a', 'abc', 'A b ', '1', '0', '2.5', '-3', 'a.b', 'true', 'null', 'x', 'items'),
);
const { value: jsonValue } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
}));
const data: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ a: jsonValue, b: scalar, items: fc.array(fc.dictionary(key, scalar, { maxKeys: 3 }), { maxLength: 4 }), n: fc.integer({ min: -3, max: 50 }), s: scalar }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: jsonValue },
);

// ------------------------------------------------------------------ rules
const path = fc.constantFrom<Json>(
  'a', 'b', 'c', 'n', 's', 'items', 'a.b', 'a.a', 'items.0', 'items.1.a', 'a.0', '0', '1', 'length', 's.length',
  '', 'x.y', 'current', 'accumulator', 'current.a', 'current.n', 0, 1, null,
);
const missingKey = fc.constantFrom<Json>('a', 'b', 'n', 'items', 'a.b', 'x', 's', '', 0);

function call(name: string, ...args: fc.Arbitrary<Json>[]): fc.Arbitrary<Json> {
  return fc.tuple(...args).map((values) => ({ [name]: values }) as Json);
}
function variadic(name: string, item: fc.Arbitrary<Json>, min: number, max: number): fc.Arbitrary<Json> {
  return fc.array(item, { minLength: min, maxLength: max }).map((values) => ({ [name]: values }) as Json);
}

const { rule } = fc.letrec<{ rule: Json; leaf: Json }>((tie) => {
  const r = tie('rule');
  return {
    leaf: fc.oneof(
      scalar,
      path.map((p) => ({ var: p }) as Json),
      fc.tuple(path, scalar).map(([p, d]) => ({ var: [p, d] }) as Json),
    ),
    rule: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 6, arbitrary: tie('leaf') },
      fc.array(scalar, { maxLength: 3 }),
      fc.tuple(r, r).map(([p, d]) => ({ var: [p, d] }) as Json),
      ...['==', '===', '!=', '!==', '>', '>=', '/', '%', 'in'].map((op) => call(op, r, r)),
      call('in', r, fc.array(scalar, { maxLength: 4 })),
      call('<', r, r), call('<=', r, r), call('<', r, r, r), call('<=', r, r, r),
      call('!', r), call('!!', r), call('-', r), call('-', r, r),
      // Unary shorthand {"!": x}: an array x would be the argument LIST, so keep x a non-array.
      r.filter((x) => !Array.isArray(x)).map((x) => ({ '!': x }) as Json),
      variadic('and', r, 1, 4), variadic('or', r, 1, 4), variadic('if', r, 0, 6), variadic('?:', r, 3, 3),
      variadic('+', r, 0, 3), variadic('*', r, 1, 3), variadic('min', r, 1, 3), variadic('max', r, 1, 3),
      variadic('cat', r, 0, 3), variadic('merge', r, 0, 3), call('substr', r, r), call('substr', r, r, r),
      variadic('missing', missingKey, 0, 3),
      fc.array(missingKey, { maxLength: 3 }).map((keys) => ({ missing: [keys] }) as Json),
      fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(missingKey, { maxLength: 3 })).map(([n, keys]) => ({ missing_some: [n, keys] }) as Json),
      ...['map', 'filter', 'all', 'some', 'none'].map((op) => call(op, r, r)),
      call('reduce', r, r), call('reduce', r, r, r),
      call('log', r),
    ),
  };
});

// ------------------------------------------------------------------ comparison
function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => same(v, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };
function run(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error: String(error) };
  }
}

t.test(`compiled rules agree with json-logic-js (seed ${seed})`, async (tt) => {
  const originalLog = console.log;
  let checked = 0;
  try {
    // json-logic-js's `log` writes to console.log; ours defaults to a no-op.
    console.log = () => {};
    fc.assert(
      fc.property(rule, data, (r, d) => {
        const expected = run(() => jsonLogic.apply(r as never, structuredClone(d)));
        const actual = run(() => compileRule(r)(structuredClone(d)));
        checked++;
        if (expected.ok !== actual.ok) return false;
        return !expected.ok || same((actual as { value: unknown }).value, expected.value);
      }),
      { seed, numRuns, endOnFailure: false },
    );
  } catch (error) {
    console.log = originalLog;
    const message = String((error as Error).message);
    const counterexample = /Counterexample: (.*)/.exec(message)?.[1] ?? '';
    let detail = message;
    try {
      const [r, d] = JSON.parse(counterexample) as [unknown, unknown];
      const expected = run(() => jsonLogic.apply(r as never, structuredClone(d)));
      const actual = run(() => compileRule(r)(structuredClone(d)));
      detail = [
        `rule: ${JSON.stringify(r)}`,
        `data: ${JSON.stringify(d)}`,
        `json-logic-js: ${JSON.stringify(expected)}`,
        `compiled:      ${JSON.stringify(actual)}`,
        `replay with JSONLOGIC_SEED=${seed}`,
        message,
      ].join('\n');
    } catch {
      // keep fast-check's own report
    }
    tt.fail(`differential failure\n${detail}`);
  } finally {
    console.log = originalLog;
  }
  tt.ok(checked >= numRuns, `${checked} cases checked`);
});
