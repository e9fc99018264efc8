// Mapping benchmark: two realistic mappings of a Segment "Order Completed"
// event (to a Meta-CAPI-like Purchase with SHA-256 user data, and to a
// GA4-like purchase with items), run side by side in one process by
// firstparty's DSL, a hand-written function, @rudderstack/json-template-engine
// (simple-path and default mode), json-logic-engine (built), Segment's
// mapping-kit and JSONata. Each engine runs in worker threads of its own
// ("forks", see README.md), one engine at a time, in alternating rounds.
//
//   node --import @swc-node/register/esm-register benchmarks/dsl/run.ts
//
// Environment: BENCH_ROUNDS (default 15), BENCH_ROUND_MS (default 60),
// BENCH_FORKS (isolates per engine, default 3; 0 runs every engine in the
// main thread's isolate), BENCH_ENGINES (comma-separated substrings of engine
// names to run; the hand-written baseline always runs), BENCH_GC (default
// minor; see gc below), BENCH_OUT (default benchmarks/dsl/results.md; "-" to
// skip writing).
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MAPPINGS, MAPPING_TITLES, PEERS, loadFirstparty, type Compiled, type Engine, type MappingName } from './engines.js';
import { makeOrders } from './events.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 60);
const FORKS = Number(process.env.BENCH_FORKS ?? 3);
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

/** What one engine reports about one mapping after compiling and checking it. */
interface Prepared {
  error?: string;
  /** Events whose output differs from hand-written (JSON-equal). */
  mismatches: number;
  mismatchExample?: string;
  compileFirstMs?: number;
  compileMedianMs?: number;
  /** Where the mapping text came from (firstparty settles it on its first compile). */
  source: string;
  limitation?: string;
}

/** Runs one engine: in this isolate, or (Fork) in a worker isolate of its own. */
interface Runner {
  /** Compile `mapping` and check its output against `expected` (hand-written's, as JSON text, per event). */
  prepare(mapping: MappingName, timeCompiles: boolean, expected: readonly string[]): Promise<Prepared>;
  /** Milliseconds for `n` calls of the prepared mapping. */
  run(mapping: MappingName, n: number): Promise<number>;
  close(): Promise<void>;
}

class LocalRunner implements Runner {
  readonly #compiled = new Map<MappingName, { compiled: Compiled; loop: Loop }>();
  readonly #keep: unknown[] = new Array(events.length);
  constructor(readonly engine: Engine) {}

  async prepare(mapping: MappingName, timeCompiles: boolean, expected: readonly string[]): Promise<Prepared> {
    const { engine } = this;
    const out: Prepared = { mismatches: 0, source: '' };
    let compiled: Compiled;
    try {
      const t0 = now();
      compiled = engine.compile(mapping);
      if (engine.name !== HAND && !engine.interprets) out.compileFirstMs = now() - t0;
      // Output must equal hand-written on every event before anything is timed.
      for (let i = 0; i < events.length; i++) {
        const got = wire(compiled.async ? await compiled.fn(events[i]!) : compiled.fn(events[i]!));
        if (!isDeepStrictEqual(got, JSON.parse(expected[i]!))) {
          out.mismatches++;
          out.mismatchExample ??= `event ${i}: expected ${expected[i]}, got ${JSON.stringify(got)}`;
        }
      }
    } catch (err) {
      return { ...out, error: (err as Error).message.split('\n')[0], source: engine.source(mapping) };
    }
    if (timeCompiles && out.compileFirstMs !== undefined) {
      // Fresh compiles of text made unique per iteration (so no cache by
      // source text can answer), for ~200 ms or at least 5 compiles.
      const times: number[] = [];
      const until = now() + 200;
      for (let k = 0; k < 5 || (now() < until && k < 2000); k++) {
        const t0 = now();
        engine.compile(mapping, k);
        times.push(now() - t0);
      }
      out.compileMedianMs = median(times);
    }
    this.#compiled.set(mapping, { compiled, loop: makeLoop(Boolean(compiled.async)) });
    const limitation = engine.limitation?.[mapping];
    return { ...out, source: engine.source(mapping), ...(limitation ? { limitation } : {}) };
  }

  async run(mapping: MappingName, n: number): Promise<number> {
    const { compiled, loop } = this.#compiled.get(mapping)!;
    gc();
    const t0 = now();
    await loop(compiled.fn, events, n, this.#keep);
    return now() - t0;
  }

  async close(): Promise<void> {}
}

type Ask = { op: 'prepare'; mapping: MappingName; timeCompiles: boolean; expected: readonly string[] } | { op: 'run'; mapping: MappingName; n: number };
type Request = Ask & { id: number };
type Reply = { id: number; value?: unknown; error?: string };

/**
 * The same engine in a worker thread: an isolate of its own (own heap, hidden
 * classes, type feedback and optimised code), as when it is the one mapping engine
 * in a server. The main thread only sends "run n calls" and waits, so one engine
 * runs at a time.
 */
class Fork implements Runner {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;
  constructor(engineName: string) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { engine: engineName } });
    this.#worker.on('message', (m: Reply) => {
      const p = this.#pending.get(m.id)!;
      this.#pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.value);
    });
    const fail = (err: Error) => {
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`the fork for ${engineName} exited (code ${code})`)));
  }
  #ask<T>(req: Ask): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ ...req, id });
    });
  }
  prepare(mapping: MappingName, timeCompiles: boolean, expected: readonly string[]): Promise<Prepared> {
    return this.#ask({ op: 'prepare', mapping, timeCompiles, expected });
  }
  run(mapping: MappingName, n: number): Promise<number> {
    return this.#ask({ op: 'run', mapping, n });
  }
  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

const fp = await loadFirstparty();
const allEngines: Engine[] = [...PEERS, ...(fp.engine ? [fp.engine] : [])];

const results: { mapping: MappingName; rows: Row[] }[] = [];

interface Row {
  engine: Engine;
  prepared: Prepared;
  /** Per round: ops/s, the median over the engine's forks. */
  samples: number[];
  /** Per fork: its median ops/s (the spread between isolates). */
  forkOps: number[];
  opsPerSec: number;
  /** Time per call relative to hand-written (median of per-round ratios). */
  xHand: number;
  /** First and third quartile of the per-round ratios: the spread of `xHand`. */
  xHandIqr: [number, number];
}

async function main(): Promise<void> {
  const engines = allEngines.filter((e) => e.name === HAND || !ONLY || ONLY.some((s) => e.name.toLowerCase().includes(s)));
  // Forks start together (loading the engines takes a second or two each).
  const runners = new Map<Engine, Runner[]>(
    engines.map((e) => [e, FORKS === 0 ? [new LocalRunner(e)] : Array.from({ length: FORKS }, () => new Fork(e.name))]),
  );
  for (const mapping of MAPPINGS) {
    // Hand-written output, computed here so that no fork runs another engine's code.
    const reference = PEERS[0]!.compile(mapping).fn;
    const expected = events.map((e) => JSON.stringify(wire(reference(e))));
    const rows: Row[] = [];
    for (const engine of engines) {
      const forks = runners.get(engine)!;
      // The first fork times compiles; the others only compile and check.
      const prepared = await Promise.all(forks.map((f, i) => f.prepare(mapping, i === 0, expected)));
      // Forks of one engine compile the same text; should one fail, the row says so.
      rows.push({ engine, prepared: prepared.find((p) => p.error !== undefined) ?? prepared[0]!, samples: [], forkOps: [], opsPerSec: NaN, xHand: NaN, xHandIqr: [NaN, NaN] });
    }
    const live = rows.filter((r) => r.prepared.error === undefined);
    // Warm up and calibrate on each fork; the batch size is the first fork's, for ~ROUND_MS.
    const iterations = new Map<Row, number>();
    for (const r of live) {
      for (const [k, f] of runners.get(r.engine)!.entries()) {
        for (let n = 64; ; n *= 2) {
          const ms = await f.run(mapping, n);
          if (ms > ROUND_MS / 2) {
            if (k === 0) iterations.set(r, Math.max(64, Math.round((n * ROUND_MS) / ms)));
            break;
          }
        }
      }
    }
    const perFork = new Map<Row, number[][]>(live.map((r) => [r, runners.get(r.engine)!.map(() => [])]));
    const slots = live.flatMap((r) => runners.get(r.engine)!.map((f, k) => ({ r, f, k })));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no engine always runs right after the same neighbour.
      for (let j = 0; j < slots.length; j++) {
        const { r, f, k } = slots[(j + round) % slots.length]!;
        const n = iterations.get(r)!;
        perFork.get(r)![k]!.push((n / (await f.run(mapping, n))) * 1000);
      }
      for (const r of live) r.samples.push(median(perFork.get(r)!.map((xs) => xs[round]!)));
    }
    const hand = rows.find((r) => r.engine.name === HAND)!;
    for (const r of live) {
      r.opsPerSec = median(r.samples);
      r.forkOps = perFork.get(r)!.map((xs) => median(xs));
      // Ratios are taken within each round (engines measured moments apart),
      // then the median across rounds: robust to load that drifts during the run.
      const ratios = hand.samples.map((h, i) => h / r.samples[i]!);
      r.xHand = median(ratios);
      r.xHandIqr = [quantile(ratios, 0.25), quantile(ratios, 0.75)];
    }
    results.push({ mapping, rows });
    process.stderr.write(`. ${mapping}\n`);
  }
  await Promise.all([...runners.values()].flat().map((f) => f.close()));
  report();
}

// ------------------------------------------------------------------ report
const fmtOps = (n: number) => (Number.isNaN(n) ? '—' : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));
const fmtMs = (ms?: number) => (ms === undefined ? '' : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);

function compileCell(r: Row): string {
  if (r.engine.name === HAND) return 'n/a';
  if (r.engine.interprets) return 'none (interprets each call)';
  const { compileMedianMs, compileFirstMs } = r.prepared;
  if (compileMedianMs === undefined) return '—';
  return `${fmtMs(compileMedianMs)} (first ${fmtMs(compileFirstMs)})`;
}

function verdicts(rows: Row[]): string {
  const f = rows.find((r) => r.engine.name === 'firstparty');
  if (!f) return fp.why ? `firstparty: not measured (${fp.why}).` : 'firstparty: not selected.';
  if (f.prepared.error !== undefined) return `firstparty: failed (${f.prepared.error}).`;
  const peers = rows.filter((r) => r.prepared.error === undefined && r.engine.name !== HAND && r.engine.name !== 'firstparty' && !r.prepared.mismatches);
  // The peer firstparty compares worst against, round by round: the median of
  // per-round speed ratios is steadier than comparing two medians of ops/s.
  const against = peers.map((p) => ({ p, speed: f.samples.map((x, i) => x / p.samples[i]!) }));
  const fastest = against.reduce<(typeof against)[number] | undefined>((a, c) => (!a || median(c.speed) < median(a.speed) ? c : a), undefined);
  const parts = [`${f.xHand.toFixed(2)}× hand-written time (target ≤ 1.30×: ${f.xHand <= 1.3 ? 'met' : `MISSED, ${(f.xHand / 1.3).toFixed(2)}× the target`})`];
  if (fastest) {
    const { speed } = fastest;
    const vs = median(speed);
    const verdict = vs >= 1 ? 'met' : vs >= 1 - NOISE ? 'met within noise' : `MISSED: ${(1 / vs).toFixed(2)}× its time`;
    const spread = `${quantile(speed, 0.25).toFixed(2)}–${quantile(speed, 0.75).toFixed(2)}`;
    parts.push(`${vs.toFixed(2)}× (${spread}) the speed of the fastest peer, ${fastest.p.engine.name} (target ≥ 1.00×, ${NOISE * 100}% noise allowance: ${verdict})`);
  }
  if (f.prepared.mismatches) parts.push(`output differs from hand-written on ${f.prepared.mismatches} events`);
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
  FORKS === 0
    ? 'Isolates: every engine in the main thread\'s V8 isolate (BENCH_FORKS=0), so engines share hidden classes and heap.'
    : `Isolates: each engine in ${FORKS} worker threads of its own ("forks": own V8 heap, hidden classes and optimised code), one running at a time; an engine's figure per round is the median over its forks.`,
  '"× hand" is time per call relative to the hand-written function (1.00× = as fast; 4.00× = four times the time), the median of ratios taken within each round, and in brackets their first and third quartile (the spread across rounds). Output is checked JSON-equal to hand-written on every event before timing; "≠ n" marks an engine that differs on n events.',
  'Compile: median of fresh compiles of the mapping text (made unique per compile so no cache answers), and in brackets the first compile in the isolate (cold code paths).',
  'Targets for firstparty: within 1.3× of hand-written time on both mappings, and at least as fast as the fastest peer on each.',
];

function report(): void {
  const sections: string[] = [];
  for (const { mapping, rows } of results) {
    const header = ['engine', 'ops/s', '× hand', 'compile per mapping', 'output = hand?', 'mapping'];
    const lines = rows.map(({ engine, prepared: p, ...r }) => [
      engine.name,
      p.error ? `error: ${p.error}` : fmtOps(r.opsPerSec),
      p.error ? '—' : engine.name === HAND ? '1.00×' : `${r.xHand.toFixed(2)}× (${r.xHandIqr[0].toFixed(2)}–${r.xHandIqr[1].toFixed(2)})`,
      compileCell({ engine, prepared: p, ...r }),
      p.error ? '—' : p.mismatches ? `≠ ${p.mismatches}` : 'yes',
      `\`${p.source}\``,
    ]);
    const table = [header, header.map(() => '---'), ...lines].map((c) => `| ${c.join(' | ')} |`).join('\n');
    const limits = rows.filter((r) => r.prepared.limitation).map((r) => `- ${r.engine.name}: ${r.prepared.limitation}.`);
    const diffs = rows.filter((r) => r.prepared.mismatchExample).map((r) => `- ${r.engine.name} differs, ${r.prepared.mismatchExample!.slice(0, 600)}`);
    const forks =
      FORKS > 1
        ? [`Median ops/s of each fork, the spread between isolates: ${rows.filter((r) => r.forkOps.length).map((r) => `${r.engine.name} ${r.forkOps.map(fmtOps).join(' / ')}`).join('; ')}.`]
        : [];
    sections.push(`### ${MAPPING_TITLES[mapping]}\n\n${table}\n\n${[verdicts(rows), ...limits, ...diffs, ...forks].map((l) => (l.startsWith('- ') ? l : `- ${l}`)).join('\n')}`);
  }

  console.log(`\n${machine}\n${notes.join('\n')}\n\n${sections.join('\n\n')}\n`);
  if (OUT !== '-') {
    writeFileSync(
      OUT,
      `# Mapping benchmark results\n\n_Generated by benchmarks/dsl/run.ts; do not edit by hand._\n\n${machine}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${sections.join('\n\n')}\n`,
    );
    console.log(`wrote ${OUT}`);
  }
}

if (!isMainThread) {
  // A fork: serve one engine's requests until the main thread terminates it.
  const engine = allEngines.find((e) => e.name === (workerData as { engine: string }).engine)!;
  const runner = new LocalRunner(engine);
  parentPort!.on('message', (req: Request) => {
    const work = req.op === 'prepare' ? runner.prepare(req.mapping, req.timeCompiles, req.expected) : runner.run(req.mapping, req.n);
    work.then(
      (value) => parentPort!.postMessage({ id: req.id, value } satisfies Reply),
      (err: unknown) => parentPort!.postMessage({ id: req.id, error: String((err as Error)?.message ?? err) } satisfies Reply),
    );
  });
} else {
  await main();
}
