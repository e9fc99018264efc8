// One adapter per engine: how it compiles a mapping and how it is called.
// The mapping texts live in ./mappings, one file per engine and mapping, so
// they can be read side by side.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import jsonata from 'jsonata';
import { LogicEngine } from 'json-logic-engine';
import { JsonTemplateEngine, PathType } from '@rudderstack/json-template-engine';
import { capiHand, ga4Hand, normEmail, phoneDigits, sha256, unixSeconds } from './hand.js';

type Obj = Record<string, any>;
export type MappingName = 'capi' | 'ga4';
export const MAPPINGS: readonly MappingName[] = ['capi', 'ga4'];
export const MAPPING_TITLES: Record<MappingName, string> = {
  capi: 'Order Completed → Meta CAPI Purchase (SHA-256 user data)',
  ga4: 'Order Completed → GA4 purchase with items',
};

export interface Compiled {
  fn: (event: Obj) => unknown;
  /** The engine returns a Promise (JSONata 2.x); the loop awaits each call. */
  async?: boolean;
}

export interface Engine {
  name: string;
  /** Where the mapping text came from, for the results file. */
  source(m: MappingName): string;
  /**
   * Compile a mapping. `nonce` makes the text unique (a trailing comment, where
   * the language has them) so that compile-time measurement never hits a cache
   * keyed by source text.
   */
  compile(m: MappingName, nonce?: number): Compiled;
  /** Mapping-time work this engine cannot express, done in JS after it. */
  limitation?: Partial<Record<MappingName, string>>;
  /** No compile step: the mapping is interpreted on every call. */
  interprets?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const text = (file: string) => readFileSync(resolve(here, 'mappings', file), 'utf8');
const rel = (abs: string) => abs.slice(root.length + 1);

// ------------------------------------------------------------- hand-written
const hand: Engine = {
  name: 'hand-written',
  source: () => 'benchmarks/dsl/hand.ts',
  compile: (m) => ({ fn: m === 'capi' ? capiHand : ga4Hand }),
};

// ------------------------------------------------- rudder json-template-engine
const rudderBindings = { sha256, normEmail, phoneDigits, unixSeconds };
function rudder(name: string, pathType?: PathType): Engine {
  return {
    name,
    source: (m) => `benchmarks/dsl/mappings/${m}.jt`,
    compile(m, nonce) {
      const src = text(`${m}.jt`) + (nonce === undefined ? '' : `\n// ${nonce}\n`);
      // createAsSync: `create` builds an async function, which would add a
      // Promise per call for nothing (the mappings await nothing).
      const engine = JsonTemplateEngine.createAsSync(src, pathType === undefined ? undefined : { defaultPathType: pathType });
      return { fn: (e) => engine.evaluate(e, rudderBindings) };
    },
  };
}

// ------------------------------------------------------------------ JSONata
const jsonataEngine: Engine = {
  name: 'JSONata',
  source: (m) => `benchmarks/dsl/mappings/${m}.jsonata`,
  compile(m, nonce) {
    const src = text(`${m}.jsonata`) + (nonce === undefined ? '' : `\n/* ${nonce} */\n`);
    const expr = jsonata(src);
    expr.registerFunction('sha256', (s: string) => (s === undefined ? undefined : sha256(s)), '<s-:s>');
    return { fn: (e) => expr.evaluate(e), async: true };
  },
};

// -------------------------------------------------- json-logic-engine (build)
/**
 * JSON Logic has no object constructor, so the mapping gets one: `obj` compiles
 * to an object literal (inlined in the built function, the fastest form the
 * engine allows). A key ending in `?` is optional: null becomes undefined, so
 * the key is absent from the JSON, as in the other engines.
 */
function makeLogicEngine(): LogicEngine {
  const engine = new LogicEngine();
  const pure = { deterministic: true, optimizeUnary: true };
  engine.addMethod('sha256', (s: unknown) => (typeof s === 'string' ? sha256(s) : null), pure);
  engine.addMethod('normEmail', (s: unknown) => normEmail(s), pure);
  engine.addMethod('phoneDigits', (s: unknown) => phoneDigits(s), pure);
  engine.addMethod('unixSeconds', (s: unknown) => unixSeconds(s), pure);
  engine.addMethod('obj', {
    lazy: true,
    deterministic: false,
    method: (spec: Obj, context: unknown, above: unknown, eng: LogicEngine) => {
      const out: Obj = {};
      for (const [k, v] of Object.entries(spec)) {
        const value = eng.run(v, context, { above } as never);
        if (k.endsWith('?')) out[k.slice(0, -1)] = value ?? undefined;
        else out[k] = value;
      }
      return out;
    },
    // @ts-expect-error `compile` is accepted at runtime (it is how built-ins inline) but not in the .d.ts
    compile: (spec: Obj, buildState: { compile(strings: string[], ...items: unknown[]): unknown }) => {
      const keys = Object.keys(spec);
      const strings: string[] = [];
      let pending = '({';
      for (const k of keys) {
        const optional = k.endsWith('?');
        strings.push(`${pending}${JSON.stringify(optional ? k.slice(0, -1) : k)}: (`);
        pending = optional ? ') ?? undefined, ' : '), ';
      }
      strings.push(`${pending}})`);
      return buildState.compile(strings, ...keys.map((k) => spec[k]));
    },
  });
  return engine;
}
const jle: Engine = {
  name: 'json-logic-engine build',
  source: (m) => `benchmarks/dsl/mappings/${m}.jle.json`,
  compile(m) {
    // A fresh engine per compile: LogicEngine memoises nothing across build()
    // calls today, but this keeps compile time honest if it ever does.
    const fn = makeLogicEngine().build(JSON.parse(text(`${m}.jle.json`))) as (e: Obj) => unknown;
    return { fn };
  },
};

// ----------------------------------------------- Segment mapping-kit transform
const require = createRequire(import.meta.url);
// The ESM build of @segment/actions-core does not load under Node's ESM
// resolver (extensionless relative imports), so take the CommonJS build; on first
// use, as it is by far the slowest module to load (instructions.ts loads this file
// in every child process).
let transformFn: ((mapping: Obj, data: Obj) => Obj) | undefined;
const transform = (mapping: Obj, data: Obj): Obj =>
  (transformFn ??= (require('@segment/actions-core') as { transform(mapping: Obj, data: Obj): Obj }).transform)(mapping, data);

/**
 * mapping-kit has no hashing, arithmetic, trimming or array index, so the
 * steps a Segment destination does in its `perform()` are done here, after
 * `transform`, exactly as the hand-written function does them.
 */
function capiAfter(out: Obj): Obj {
  const u = out.user_data;
  const email = normEmail(u.em);
  const phone = phoneDigits(u.ph);
  u.em = email ? [sha256(email)] : undefined;
  u.ph = phone ? [sha256(phone)] : undefined;
  u.external_id = u.external_id ? [sha256(u.external_id)] : undefined;
  out.event_time = unixSeconds(out.event_time);
  const contents: Obj[] = out.custom_data.contents;
  let items = 0;
  const ids = new Array<string>(contents.length);
  for (let i = 0; i < contents.length; i++) {
    ids[i] = contents[i]!.id;
    items += contents[i]!.quantity;
  }
  out.custom_data.content_ids = ids;
  out.custom_data.num_items = items;
  return out;
}
function ga4After(out: Obj): Obj {
  const items: Obj[] = out.events[0].params.items;
  for (let i = 0; i < items.length; i++) items[i]!.index = i;
  return out;
}
const mappingKit: Engine = {
  name: 'Segment mapping-kit',
  source: (m) => `benchmarks/dsl/mappings/${m}.mapping-kit.json`,
  interprets: true,
  limitation: {
    capi: 'no directive hashes, trims, converts dates or sums: normalization + SHA-256 of em/ph/external_id, event_time, content_ids and num_items are done in JS after transform (as a Segment destination does in perform())',
    ga4: 'no array index in @arrayPath: items[].index is set in JS after transform',
  },
  compile(m) {
    const mapping = JSON.parse(text(`${m}.mapping-kit.json`)) as Obj;
    const after = m === 'capi' ? capiAfter : ga4After;
    return { fn: (e) => after(transform(mapping, e)) };
  },
};

// ---------------------------------------------------------- firstparty DSL
/**
 * The DSL is being built alongside this benchmark. Its column fills in as
 * soon as `dsl/index.ts` exports `compileMapping`; mapping text is taken from
 * benchmarks/dsl/mappings/<m>.fp when present, else from dsl/examples. When
 * the preferred text does not compile and a `<m>.noindex.fp` stands in for
 * it, the missing step is done in JS after the mapping and reported.
 */
const DSL_FILES: Record<MappingName, string[]> = {
  capi: [resolve(here, 'mappings/capi.fp'), resolve(root, 'dsl/examples/meta-capi.fp')],
  ga4: [resolve(here, 'mappings/ga4.fp'), resolve(root, 'dsl/examples/ga4.fp')],
};
const DSL_STAND_INS: Partial<Record<MappingName, { file: string; after: (out: Obj) => Obj; what: string }>> = {
  ga4: { file: resolve(here, 'mappings/ga4.noindex.fp'), after: ga4After, what: 'items[].index is set in JS after the mapping' },
};

type CompileMapping = (source: string, options?: Obj) => unknown;

/** Accept the shapes a mapping compiler plausibly returns; say which it was not. */
function asCallable(compiled: unknown): (e: Obj) => unknown {
  if (typeof compiled === 'function') return compiled as (e: Obj) => unknown;
  if (compiled && typeof compiled === 'object') {
    const c = compiled as Obj;
    for (const k of ['run', 'map', 'apply', 'transform', 'evaluate', 'fn']) {
      if (typeof c[k] === 'function') return (e) => c[k](e);
    }
  }
  throw new Error(`firstparty: compileMapping returned ${typeof compiled}; the harness needs a function or an object with run()`);
}

const firstLine = (err: unknown) => String((err as Error).message ?? err).split('\n').slice(0, 2).join(' ');

export async function loadFirstparty(): Promise<{ engine?: Engine; why?: string }> {
  const entry = resolve(root, 'dsl/index.ts');
  if (!existsSync(entry)) return { why: 'dsl/index.ts does not exist yet' };
  let mod: Obj;
  try {
    // A computed specifier keeps `tsc` from requiring the module to exist.
    mod = (await import(pathToFileURL(entry).href)) as Obj;
  } catch (err) {
    return { why: `dsl/index.ts failed to load: ${firstLine(err)}` };
  }
  const compileMapping = mod.compileMapping as CompileMapping | undefined;
  if (typeof compileMapping !== 'function') return { why: 'dsl/index.ts does not export compileMapping yet' };
  const files = {} as Record<MappingName, string>;
  for (const m of MAPPINGS) {
    const file = DSL_FILES[m].find((f) => existsSync(f));
    if (!file) return { why: `no DSL mapping for ${m} (looked for ${DSL_FILES[m].map(rel).join(', ')})` };
    files[m] = file;
  }
  // Which text runs is settled by the first compile, which run.ts times as the cold
  // compile: a probe compile here would warm the compiler and fill its cache first.
  const chosen: Partial<Record<MappingName, { file: string; after?: (out: Obj) => Obj }>> = {};
  const limitation: Partial<Record<MappingName, string>> = {};
  const load = (file: string, nonce?: number) => readFileSync(file, 'utf8') + (nonce === undefined ? '' : `\n// ${nonce}\n`);
  return {
    engine: {
      name: 'firstparty',
      source: (m) => rel(chosen[m]?.file ?? files[m]),
      limitation,
      compile(m, nonce) {
        let pick = chosen[m];
        if (pick === undefined) {
          try {
            const fn = asCallable(compileMapping(load(files[m], nonce)));
            chosen[m] = { file: files[m] };
            return { fn };
          } catch (err) {
            const standIn = DSL_STAND_INS[m];
            if (!standIn || !existsSync(standIn.file)) throw err; // run.ts reports the compile error
            pick = chosen[m] = standIn;
            limitation[m] = `${rel(files[m])} does not compile (${firstLine(err).replace(/\s+/g, ' ')}), so ${rel(standIn.file)} runs and ${standIn.what}`;
          }
        }
        const { file, after } = pick;
        const fn = asCallable(compileMapping(load(file, nonce)));
        return { fn: after ? (e) => after(fn(e) as Obj) : fn };
      },
    },
  };
}

export const PEERS: readonly Engine[] = [
  hand,
  rudder('json-template-engine (simple paths)', PathType.SIMPLE),
  rudder('json-template-engine (default)'),
  jle,
  mappingKit,
  jsonataEngine,
];
