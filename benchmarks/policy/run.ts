// Policy-rule benchmark: json-logic-js, json-logic-engine (interpreted and
// built), firstparty's compiled rules and a hand-written function per rule,
// side by side in one run, over realistic Segment track events.
//
//   node --import @swc-node/register/esm-register benchmarks/policy/run.ts
//
// Environment: BENCH_ROUNDS (default 9), BENCH_ROUND_MS (default 60),
// BENCH_OUT (default benchmarks/policy/results.md; "-" to skip writing).
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonLogic from 'json-logic-js';
import { LogicEngine } from 'json-logic-engine';
import { compileRule } from '../../src/policy/jsonlogic/index.js';
import { makeEvents } from './events.js';
import { RULES } from './rules.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 40);
const OUT = process.env.BENCH_OUT ?? resolve(dirname(fileURLToPath(import.meta.url)), 'results.md');

type Fn = (data: unknown) => unknown;
const ENGINES = ['json-logic-js', 'jle run', 'jle build', 'firstparty', 'hand-written'] as const;
type EngineName = (typeof ENGINES)[number];

const events = makeEvents(256);
const MASK = events.length - 1;
const avgBytes = Math.round(events.reduce((n, e) => n + JSON.stringify(e).length, 0) / events.length);

/**
 * One loop per (rule, engine), each compiled from its own source text so that
 * V8 keeps separate type feedback: a shared loop would see five callees and
 * go megamorphic, penalising whichever engine runs last. The result feeds a
 * checksum that is returned, so no call can be dropped as dead code.
 */
function makeLoop(): (fn: Fn, data: readonly unknown[], n: number) => number {
  const nonce = Math.random().toString(36).slice(2);
  return new Function('fn', 'data', 'n', `// loop ${nonce}
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const r = fn(data[i & ${MASK}]);
      sink = (sink + (r === true ? 1 : typeof r === 'number' ? (r | 0) : r ? 2 : 3)) | 0;
    }
    return sink;`) as (fn: Fn, data: readonly unknown[], n: number) => number;
}

function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || Math.abs(a - b) < 1e-9;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  return a === b;
}

interface Result {
  rule: string;
  opsPerSec: Record<EngineName, number>;
  agree: Record<EngineName, boolean>;
  /** Time per call relative to hand-written (median of per-round ratios). */
  slowdown: Record<EngineName, number>;
  vsBuild: number;
  vsJs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

let globalSink = 0;
const results: Result[] = [];
const engine = new LogicEngine();

for (const spec of RULES) {
  const built = engine.build(spec.rule) as Fn;
  const compiled = compileRule(spec.rule) as Fn;
  const fns: Record<EngineName, Fn> = {
    'json-logic-js': (d) => jsonLogic.apply(spec.rule as never, d),
    'jle run': (d) => engine.run(spec.rule, d),
    'jle build': built,
    firstparty: compiled,
    'hand-written': spec.hand,
  };
  // Results must agree with the reference on every event before anything is timed.
  const agree = {} as Record<EngineName, boolean>;
  for (const name of ENGINES) {
    agree[name] = events.every((e) => same(fns[name](e), jsonLogic.apply(spec.rule as never, e)));
  }
  const loops = Object.fromEntries(ENGINES.map((n) => [n, makeLoop()])) as Record<EngineName, ReturnType<typeof makeLoop>>;
  // Calibrate: iterations for ~ROUND_MS each, after a warm-up.
  const iterations = {} as Record<EngineName, number>;
  for (const name of ENGINES) {
    let n = 256;
    for (;;) {
      const t0 = performance.now();
      globalSink ^= loops[name](fns[name], events, n);
      const ms = performance.now() - t0;
      if (ms > ROUND_MS / 2) {
        iterations[name] = Math.max(256, Math.round((n * ROUND_MS) / ms));
        break;
      }
      n *= 2;
    }
  }
  const samples = Object.fromEntries(ENGINES.map((n) => [n, [] as number[]])) as Record<EngineName, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no engine always runs right after the same neighbour.
    const order = ENGINES.map((_, i) => ENGINES[(i + round) % ENGINES.length] as EngineName);
    for (const name of order) {
      const n = iterations[name];
      const t0 = performance.now();
      globalSink ^= loops[name](fns[name], events, n);
      const ms = performance.now() - t0;
      samples[name].push((n / ms) * 1000);
    }
  }
  const opsPerSec = Object.fromEntries(ENGINES.map((n) => [n, median(samples[n])])) as Record<EngineName, number>;
  // Ratios are taken within each round (engines measured moments apart), then
  // the median across rounds: robust to load that drifts during the run.
  const ratio = (a: EngineName, b: EngineName) => median(samples[a].map((x, i) => x / (samples[b][i] as number)));
  const slowdown = Object.fromEntries(ENGINES.map((n) => [n, ratio('hand-written', n)])) as Record<EngineName, number>;
  results.push({
    rule: spec.name,
    opsPerSec,
    agree,
    slowdown,
    vsBuild: ratio('firstparty', 'jle build'),
    vsJs: ratio('firstparty', 'json-logic-js'),
  });
  process.stderr.write(`. ${spec.name}\n`);
}

// ------------------------------------------------------------------ report
const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`);
const header = ['rule', ...ENGINES.map((e) => `${e} ops/s (× hand)`), 'firstparty speed vs jle build', 'firstparty speed vs json-logic-js', 'targets'];
const rows = results.map((r) => {
  const cells = ENGINES.map((e) => `${fmt(r.opsPerSec[e])} (${r.slowdown[e].toFixed(2)}×)${r.agree[e] ? '' : ' ≠'}`);
  const missed = [
    r.slowdown.firstparty > 1.5 ? '> 1.5× hand' : '',
    r.vsBuild < 0.95 ? 'slower than jle build' : '',
    r.vsJs < 20 ? '< 20× json-logic-js' : '',
  ].filter(Boolean);
  return [r.rule, ...cells, `${r.vsBuild.toFixed(2)}×`, `${r.vsJs.toFixed(0)}×`, missed.length ? `MISSED: ${missed.join(', ')}` : 'met'];
});
const table = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString()}`;
const notes = [
  `Events: ${events.length} Segment track events, ~${avgBytes} bytes of JSON each. ${ROUNDS} rounds of ~${ROUND_MS} ms per engine and rule; median ops/s.`,
  '"× hand" is the time per call relative to the hand-written function (1.00× = as fast), and the speed columns compare firstparty with a peer (2.00× = twice as fast); both are medians of ratios taken within each round. "≠" marks an engine whose results differ from json-logic-js on some event.',
  'Targets: firstparty within 1.5× of hand-written, not slower than json-logic-engine build (5% noise allowance), ≥ 20× faster than json-logic-js.',
];
console.log(`\n${machine}\n${notes.join('\n')}\n\n${table}\n`);
if (globalSink === 0.5) console.log('unreachable'); // keep the sink observable
if (OUT !== '-') {
  writeFileSync(OUT, `# Policy rule benchmark results\n\n_Generated by benchmarks/policy/run.ts; do not edit by hand._\n\n${machine}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${table}\n\n## Rules\n\n${RULES.map((r) => `- **${r.name}**: \`${JSON.stringify(r.rule)}\``).join('\n')}\n`);
  console.log(`wrote ${OUT}`);
}
