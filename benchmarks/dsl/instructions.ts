// Instructions per call under callgrind: a second opinion beside run.ts's timings,
// for a shared, noisy machine. Counts do not depend on load (they are the same on
// every run within a fraction of a percent), but they are not time: they ignore
// cache misses and instruction-level parallelism, and they count garbage collection
// only as far as it happens in the measured calls.
//
//   node --import @swc-node/register/esm-register benchmarks/dsl/instructions.ts
//
// Each (mapping, engine) runs in two child processes under
// `valgrind --tool=callgrind`, one making WARM calls and one WARM + CALLS; the
// difference of their totals divided by CALLS is the engine's instructions per call
// (start-up, compilation and warm-up cancel out). `node --single-threaded` keeps
// V8's background compiler and GC threads out, and a full GC after the warm-up starts
// both runs of a pair from the same heap; what garbage collection the measured calls
// cause is counted with them (enough calls make a stray major GC a small share).
//
// Environment: BENCH_ENGINES (comma-separated substrings of engine names; default
// hand-written, json-template-engine (simple paths), firstparty), BENCH_CALLS
// (default 500000), BENCH_WARM (default 20000).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MAPPINGS, PEERS, loadFirstparty, type Engine, type MappingName } from './engines.js';
import { makeOrders } from './events.js';

const self = fileURLToPath(import.meta.url);
const CALLS = Number(process.env.BENCH_CALLS ?? 500_000);
const WARM = Number(process.env.BENCH_WARM ?? 20_000);
const DEFAULT_ENGINES = ['hand-written', 'json-template-engine (simple paths)', 'firstparty'];

async function engines(): Promise<Engine[]> {
  const fp = await loadFirstparty();
  const all = [...PEERS, ...(fp.engine ? [fp.engine] : [])];
  const only = process.env.BENCH_ENGINES?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  return all.filter((e) => (only ? only.some((s) => e.name.toLowerCase().includes(s)) : DEFAULT_ENGINES.includes(e.name)));
}

if (process.argv[2] === 'child') {
  const [, , , mapping, name, n] = process.argv as [string, string, string, MappingName, string, string];
  const engine = (await engines()).find((e) => e.name === name);
  if (!engine) throw new Error(`no engine ${name}`);
  const { fn, async } = engine.compile(mapping);
  if (async) throw new Error(`${name} is asynchronous; count it with run.ts`);
  const events = makeOrders(256);
  const keep: unknown[] = new Array(events.length);
  const loop = (from: number, to: number) => {
    for (let i = from; i < to; i++) keep[i & 255] = fn(events[i & 255]!);
  };
  loop(0, WARM);
  (globalThis as unknown as { gc(): void }).gc();
  loop(WARM, Number(n));
  if (keep.length !== events.length) console.log('unreachable');
} else {
  const count = (mapping: MappingName, engine: string, n: number): number => {
    const r = spawnSync(
      'valgrind',
      ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', '--expose-gc', '--import', '@swc-node/register/esm-register', self, 'child', mapping, engine, String(n)],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    const m = /Collected : (\d+)/.exec(r.stderr ?? '');
    if (r.status !== 0 || !m) throw new Error(`callgrind failed for ${engine} on ${mapping}: ${(r.error?.message ?? r.stderr ?? '').slice(-400)}`);
    return Number(m[1]);
  };
  const list = await engines();
  const lines = ['| mapping | engine | instructions per call | × hand |', '| --- | --- | --- | --- |'];
  for (const mapping of MAPPINGS) {
    let hand = NaN;
    for (const e of list) {
      const perCall = (count(mapping, e.name, WARM + CALLS) - count(mapping, e.name, WARM)) / CALLS;
      if (e.name === 'hand-written') hand = perCall;
      lines.push(`| ${mapping} | ${e.name} | ${Math.round(perCall)} | ${Number.isNaN(hand) ? '—' : (perCall / hand).toFixed(2) + '×'} |`);
      process.stderr.write(`${lines[lines.length - 1]}\n`);
    }
  }
  console.log(`\nInstructions per call (callgrind, ${CALLS} calls after ${WARM} warm-up calls, node ${process.version} --single-threaded)\n\n${lines.join('\n')}\n`);
}
