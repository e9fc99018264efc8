// Mapping benchmark: two realistic mappings of a Segment "Order Completed"
// event (to a Meta-CAPI-like Purchase with SHA-256 user data, and to a
// GA4-like purchase with items), run side by side in one process by
// firstparty's DSL, a hand-written function, @rudderstack/json-template-engine
// (simple-path and default mode), json-logic-engine (built), Segment's
// mapping-kit and JSONata.
//
//   node --import @swc-node/register/esm-register benchmarks/dsl/run.ts
//
// Environment: BENCH_ROUNDS (default 15), BENCH_ROUND_MS (default 60),
// BENCH_ENGINES (comma-separated substrings of engine names to run; the
// hand-written baseline always runs), BENCH_GC (default minor; see gc below),
// BENCH_OUT (default benchmarks/dsl/results.md; "-" to skip writing).
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MAPPINGS, MAPPING_TITLES, PEERS, loadFirstparty, type Compiled, type Engine, type MappingName } from './engines.js';
import { makeOrders } from './events.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 60);
const OUT = process.env.BENCH_OUT ?? resolve(dirname(fileURLToPath(import.meta.url)), 'results.md');
const ONLY = process.env.BENCH_ENGINES?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
/** A peer within this fraction of firstparty's speed counts as a tie. */
const NOISE = 0.05;
const HAND = 'hand-written';

type Obj = Record<string, any>;
type Loop = (fn: (e: Obj) => unknown, data: readonly Obj[], n: number, keep: unknown[]) => unknown;

const events = makeOrders(256);
const MASK = events.length - 1;
const avgBytes = Math.round(events.reduce((n, e) => n + JSON.stringify(e).length, 0) / events.length);

const fp = await loadFirstparty();
const engines: Engine[] = [...PEERS, ...(fp.engine ? [fp.engine] : [])].filter(
  (e) => e.name === HAND || !ONLY || ONLY.some((s) => e.name.toLowerCase().includes(s)),
);

/**
 * One loop per (mapping, engine), each compiled from its own source text so
 * V8 keeps separate type feedback for it (a shared loop would go megamorphic
 * and penalise whichever engine runs last). Every result is stored in a ring
 * that outlives the loop, so no allocation can be optimised away.
 */
function makeLoop(async: boolean): Loop {
  const nonce = Math.random().toString(36).slice(2);
  const body = `// loop ${nonce}
    let last;
    for (let i = 0; i < n; i++) {
      last = ${async ? 'await ' : ''}fn(data[i & ${MASK}]);
      keep[i & ${MASK}] = last;
    }
    return last;`;
  return (async ? new Function('return async function (fn, data, n, keep) {' + body + '}')() : new Function('fn', 'data', 'n', 'keep', body)) as Loop;
}

/** Output as it goes on the wire: keys whose value is undefined are absent. */
const wire = (x: unknown): unknown => JSON.parse(JSON.stringify(x) ?? 'null');
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] as number;
const median = (xs: number[]) => quantile(xs, 0.5);
const now = () => performance.now();

interface Row {
  engine: Engine;
  compiled?: Compiled;
  error?: string;
  /** Events whose output differs from hand-written (JSON-equal). */
  mismatches: number;
  mismatchExample?: string;
  compileFirstMs?: number;
  compileMedianMs?: number;
  samples: number[];
  opsPerSec: number;
  /** Time per call relative to hand-written (median of per-round ratios). */
  xHand: number;
  /** First and third quartile of the per-round ratios: the spread of `xHand`. */
  xHandIqr: [number, number];
}

/**
 * A young-generation GC before each timed slice, so one engine's short-lived
 * garbage (mapping-kit and JSONata allocate a lot) is not collected on the next
 * engine's clock. Not a full GC: that also drops optimized code whose embedded
 * maps died, and made JSONata 5× slower than it runs without it.
 * BENCH_GC=none|minor|full to compare.
 */
setFlagsFromString('--expose-gc');
const gcRaw = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
const GC = process.env.BENCH_GC ?? 'minor';
const gc = () => (GC === 'full' ? gcRaw() : GC === 'minor' ? gcRaw({ type: 'minor' }) : undefined);

const keep: unknown[] = new Array(events.length);
const results: { mapping: MappingName; rows: Row[] }[] = [];

for (const mapping of MAPPINGS) {
  const reference = PEERS[0]!.compile(mapping).fn;
  const expected = events.map((e) => wire(reference(e)));
  const rows: Row[] = [];
  for (const engine of engines) {
    const row: Row = { engine, mismatches: 0, samples: [], opsPerSec: NaN, xHand: NaN, xHandIqr: [NaN, NaN] };
    rows.push(row);
    try {
      const t0 = now();
      row.compiled = engine.compile(mapping);
      if (engine.name !== HAND && !engine.interprets) row.compileFirstMs = now() - t0;
      // Output must equal hand-written on every event before anything is timed.
      for (let i = 0; i < events.length; i++) {
        const out = row.compiled.async ? await row.compiled.fn(events[i]!) : row.compiled.fn(events[i]!);
        const got = wire(out);
        if (!isDeepStrictEqual(got, expected[i])) {
          row.mismatches++;
          row.mismatchExample ??= `event ${i}: expected ${JSON.stringify(expected[i])}, got ${JSON.stringify(got)}`;
        }
      }
    } catch (err) {
      row.error = (err as Error).message.split('\n')[0];
      row.compiled = undefined;
      continue;
    }
    if (row.compileFirstMs !== undefined) {
      // Fresh compiles of text made unique per iteration (so no cache by
      // source text can answer), for ~200 ms or at least 5 compiles.
      const times: number[] = [];
      const until = now() + 200;
      for (let k = 0; k < 5 || (now() < until && k < 2000); k++) {
        const t0 = now();
        engine.compile(mapping, k);
        times.push(now() - t0);
      }
      row.compileMedianMs = median(times);
    }
  }

  const live = rows.filter((r) => r.compiled);
  const loops = new Map(live.map((r) => [r, makeLoop(Boolean(r.compiled!.async))]));
  const run = async (r: Row, n: number) => {
    gc();
    const t0 = now();
    await loops.get(r)!(r.compiled!.fn, events, n, keep);
    return now() - t0;
  };
  // Warm up and calibrate: iterations for ~ROUND_MS per engine and round.
  const iterations = new Map<Row, number>();
  for (const r of live) {
    for (let n = 64; ; n *= 2) {
      const ms = await run(r, n);
      if (ms > ROUND_MS / 2) {
        iterations.set(r, Math.max(64, Math.round((n * ROUND_MS) / ms)));
        break;
      }
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no engine always runs right after the same neighbour.
    for (let k = 0; k < live.length; k++) {
      const r = live[(k + round) % live.length]!;
      const n = iterations.get(r)!;
      r.samples.push((n / (await run(r, n))) * 1000);
    }
  }
  const hand = rows.find((r) => r.engine.name === HAND)!;
  for (const r of live) {
    r.opsPerSec = median(r.samples);
    // Ratios are taken within each round (engines measured moments apart),
    // then the median across rounds: robust to load that drifts during the run.
    const ratios = hand.samples.map((h, i) => h / r.samples[i]!);
    r.xHand = median(ratios);
    r.xHandIqr = [quantile(ratios, 0.25), quantile(ratios, 0.75)];
  }
  results.push({ mapping, rows });
  process.stderr.write(`. ${mapping}\n`);
}

// ------------------------------------------------------------------ report
const fmtOps = (n: number) => (Number.isNaN(n) ? '—' : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));
const fmtMs = (ms?: number) => (ms === undefined ? '' : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);

function compileCell(r: Row): string {
  if (r.engine.name === HAND) return 'n/a';
  if (r.engine.interprets) return 'none (interprets each call)';
  if (r.compileMedianMs === undefined) return '—';
  return `${fmtMs(r.compileMedianMs)} (first ${fmtMs(r.compileFirstMs)})`;
}

function verdicts(rows: Row[]): string {
  const f = rows.find((r) => r.engine.name === 'firstparty');
  if (!f) return fp.why ? `firstparty: not measured (${fp.why}).` : 'firstparty: not selected.';
  if (!f.compiled) return `firstparty: failed (${f.error}).`;
  const peers = rows.filter((r) => r.compiled && r.engine.name !== HAND && r.engine.name !== 'firstparty' && !r.mismatches);
  const fastest = peers.reduce<Row | undefined>((a, r) => (!a || r.opsPerSec > a.opsPerSec ? r : a), undefined);
  const parts = [`${f.xHand.toFixed(2)}× hand-written time (target ≤ 1.30×: ${f.xHand <= 1.3 ? 'met' : `MISSED, ${(f.xHand / 1.3).toFixed(2)}× the target`})`];
  if (fastest) {
    const speed = f.samples.map((x, i) => x / fastest.samples[i]!);
    const vs = median(speed);
    const verdict = vs >= 1 ? 'met' : vs >= 1 - NOISE ? 'met within noise' : `MISSED: ${(1 / vs).toFixed(2)}× its time`;
    const spread = `${quantile(speed, 0.25).toFixed(2)}–${quantile(speed, 0.75).toFixed(2)}`;
    parts.push(`${vs.toFixed(2)}× (${spread}) the speed of the fastest peer, ${fastest.engine.name} (target ≥ 1.00×, ${NOISE * 100}% noise allowance: ${verdict})`);
  }
  if (f.mismatches) parts.push(`output differs from hand-written on ${f.mismatches} events`);
  return `firstparty: ${parts.join('; ')}.`;
}

const machine = `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString()}, load average ${loadavg()
  .map((x) => x.toFixed(2))
  .join(' ')}`;
const settings = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_OUT').map(([k, v]) => `${k}=${v} `).join('');
const command = `${settings}node --import @swc-node/register/esm-register benchmarks/dsl/run.ts${settings ? '' : ' (= npm run bench:dsl)'}`;
const notes = [
  `Command: \`${command}\`.`,
  `Events: ${events.length} Segment "Order Completed" track events (3–5 products), ~${avgBytes} bytes of JSON each. ${ROUNDS} rounds of ~${ROUND_MS} ms per engine and mapping, engines alternating; median ops/s.`,
  '"× hand" is time per call relative to the hand-written function (1.00× = as fast; 4.00× = four times the time), the median of ratios taken within each round, and in brackets their first and third quartile (the spread across rounds). Output is checked JSON-equal to hand-written on every event before timing; "≠ n" marks an engine that differs on n events.',
  'Compile: median of fresh compiles of the mapping text (made unique per compile so no cache answers), and in brackets the first compile in the process (cold code paths).',
  'Targets for firstparty: within 1.3× of hand-written time on both mappings, and at least as fast as the fastest peer on each.',
];

const sections: string[] = [];
for (const { mapping, rows } of results) {
  const header = ['engine', 'ops/s', '× hand', 'compile per mapping', 'output = hand?', 'mapping'];
  const lines = rows.map((r) => [
    r.engine.name,
    r.error ? `error: ${r.error}` : fmtOps(r.opsPerSec),
    r.error ? '—' : r.engine.name === HAND ? '1.00×' : `${r.xHand.toFixed(2)}× (${r.xHandIqr[0].toFixed(2)}–${r.xHandIqr[1].toFixed(2)})`,
    compileCell(r),
    r.error ? '—' : r.mismatches ? `≠ ${r.mismatches}` : 'yes',
    `\`${r.engine.source(mapping)}\``,
  ]);
  const table = [header, header.map(() => '---'), ...lines].map((c) => `| ${c.join(' | ')} |`).join('\n');
  const limits = rows
    .filter((r) => r.engine.limitation?.[mapping])
    .map((r) => `- ${r.engine.name}: ${r.engine.limitation![mapping]}.`);
  const diffs = rows.filter((r) => r.mismatchExample).map((r) => `- ${r.engine.name} differs, ${r.mismatchExample!.slice(0, 600)}`);
  sections.push(`### ${MAPPING_TITLES[mapping]}\n\n${table}\n\n${[verdicts(rows), ...limits, ...diffs].map((l) => (l.startsWith('- ') ? l : `- ${l}`)).join('\n')}`);
}

console.log(`\n${machine}\n${notes.join('\n')}\n\n${sections.join('\n\n')}\n`);
if (keep.length !== events.length) console.log('unreachable'); // keep the ring observable
if (OUT !== '-') {
  writeFileSync(
    OUT,
    `# Mapping benchmark results\n\n_Generated by benchmarks/dsl/run.ts; do not edit by hand._\n\n${machine}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${sections.join('\n\n')}\n`,
  );
  console.log(`wrote ${OUT}`);
}
