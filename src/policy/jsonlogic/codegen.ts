/**
 * IR → JavaScript source → function.
 *
 * Safety comes from what this file can emit, not from `new Function`:
 * - every value from a rule reaches the source only through `literal()`
 *   (JSON.stringify for strings, with U+2028/U+2029 escaped; numbers formatted
 *   here; anything else goes into the frozen constants array `K`);
 * - identifiers are generated here (`t12`, `f3`, `k0`), never taken from a rule;
 * - the function sees only its parameter, the frozen runtime `R` and `K`.
 *
 * Speed comes from static knowledge: var paths become inline property reads
 * (own-property safe through one prototype check per call, see `#own`), from a
 * read base that is never null (`v ?? EMPTY`), truthiness checks disappear where the
 * kind of a value is known,
 * `and`/`or` in a condition become `&&`/`||`, `in` over a constant list
 * becomes a chain of `===`, and array operators become plain loops. In mapping
 * mode (`GenerateOptions.output`) the output is built as object literals of owned
 * values with inline counters, so nothing copies or walks it afterwards (`#sink`).
 */
import { JsonLogicCompileError } from './errors.js';
import { FORBIDDEN_SEGMENTS, sameScopeChildren, stmtChildren, type Node, type ObjectEntry, type Stmt } from './ir.js';
import type { Operation, OperationFn, Operations } from './operations.js';
import { keyGuard, runtime, type LimitKind, type OutputLimits, type Runtime } from './runtime.js';

/** What the generator knows statically about a value. */
type Kind = 'boolean' | 'number' | 'string' | 'array' | 'null' | 'any';

interface Expr {
  /** A JavaScript expression, always safe to embed as an operand (parenthesised). */
  readonly code: string;
  readonly kind: Kind;
  /** A literal or a local variable: cheap to repeat, already evaluated. */
  readonly atom: boolean;
  /** Evaluating it later, or not at all, is unobservable (no side effects). */
  readonly pure: boolean;
  /** Never null or undefined (a fresh object, say) even though its kind is 'any'. */
  readonly nonNull?: boolean;
  /** A number that is never NaN or infinite (a loop index). */
  readonly finite?: boolean;
  /**
   * Mapping mode: when this value is null, the code that placed it has set `bit` in
   * the local `mask` (see `#sink`), so an object literal need not test it again.
   */
  readonly nullFlag?: NullSlot;
}

/** A bit in a local that records which values of an object literal are null. */
interface NullSlot {
  readonly mask: string;
  readonly bit: number;
}

interface Scope {
  /** Variable holding the scope data, or null in a reduce body that never needs the pair object. */
  readonly data: string | null;
  /** Inside a reduce body: variables holding `current` and `accumulator`. */
  readonly reduce?: { readonly current: string; readonly accumulator: string; readonly accumulatorKind: Kind };
  /** Whether `data` may be null or undefined. */
  readonly nullable: boolean;
  /** Path (segments joined by NUL) → variable holding its own-read value, or undefined when absent. */
  readonly cache?: Map<string, string>;
}

export interface GenerateOptions {
  /**
   * Check `Object.hasOwn` on every property read, instead of only where an
   * inherited value is possible from a built-in prototype (see `#own`). Only
   * matters for data holding class instances whose prototypes define
   * data-like properties.
   * @default false
   */
  strictOwnProperties?: boolean;
  /**
   * Bound loops: the function takes a second parameter `{ steps }` and every loop
   * iteration decrements it, throwing a `LimitError` below zero. Used for mappings,
   * whose nested array functions could otherwise multiply their work.
   * @default false
   */
  budget?: boolean;
  /**
   * Mapping mode: `output` nodes build an owned, plain-JSON output (values read from
   * the data are adopted, containers copied) and count its values and approximate
   * bytes, throwing a `LimitError` over these limits; array steps are counted in a
   * local (no `budget` parameter). After a call, `runtime.cost.b` holds the bytes of
   * the output just built.
   */
  output?: OutputLimits & { readonly steps: number };
}

export interface GeneratedRule {
  readonly source: string;
  readonly fn: (data: unknown, budget?: { steps: number }) => unknown;
  /**
   * Mapping mode (`output`): `fn` returns the output or null (never undefined);
   * `apply` returns the output with its approximate bytes.
   */
  readonly apply?: (data: unknown) => { output: unknown; bytes: number };
}

const COMPARE: Record<string, (a: any, b: any) => boolean> = {
  '==': (a, b) => a == b, // eslint-disable-line eqeqeq -- JSON-Logic's == is JavaScript's
  '===': (a, b) => a === b,
  '!=': (a, b) => a != b, // eslint-disable-line eqeqeq
  '!==': (a, b) => a !== b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
};

const RUNTIME_NAMES = Object.keys(runtime) as (keyof Runtime)[];
/**
 * Numbers every generated source. V8 caches `new Function` by source text: from the
 * second compile of the same text on, the functions share their code and feedback, so
 * the optimiser can no longer treat what the factory put in their context (the
 * prototypes the entry guard reads, the constants) as constants, and one mapping's
 * type feedback would steer another's optimisation. A unique line keeps each compile
 * its own.
 */
let serial = 0;
const PRIMITIVE_KINDS = new Set<Kind>(['boolean', 'number', 'string', 'null']);
const MAX_INLINE_IN = 16;
/** Most values of an object literal that may be null for which one literal per absent value is emitted. */
const MAX_LITERAL_VARIANTS = 8;
/** Values of one object literal whose nullness a mask records (bits of a small integer). */
const MAX_MASK_BITS = 30;
/** Longest and/or/if chain emitted as one nested expression; longer ones become flat statements. */
const MAX_INLINE_CHAIN = 32;

/** Text of a string literal that is valid JavaScript whatever the string holds. */
function stringLiteral(value: string): string {
  return JSON.stringify(value).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function numberLiteral(value: number): string {
  if (Number.isNaN(value)) return '(0/0)';
  if (value === Infinity) return '(1/0)';
  if (value === -Infinity) return '(-1/0)';
  if (Object.is(value, -0)) return '(-0)';
  // String(number) only yields digits, '.', 'e', '+', '-'.
  return value < 0 ? `(${String(value)})` : String(value);
}

function union(kinds: readonly Kind[]): Kind {
  const first = kinds[0] ?? 'any';
  return kinds.every((k) => k === first) ? first : 'any';
}

class Generator {
  readonly #ops: Operations;
  readonly #consts: unknown[] = [];
  readonly #constNames = new Map<unknown, string>();
  readonly #prologue: string[] = [];
  readonly #temps: string[] = [];
  readonly #pure = new WeakMap<Node, boolean>();
  readonly #strictOwn: boolean;
  readonly #budget: boolean;
  readonly #options: GenerateOptions;
  readonly #limits: (OutputLimits & { readonly steps: number }) | null;
  /** Mapping mode: the local counting array steps left (created on first use). */
  #steps: string | null = null;
  /** The counters (values, bytes) of the output being built, in mapping mode. */
  #counters: { readonly n: string; readonly b: string } | null = null;
  /** Static output counts being folded into the counters' start values (see `#countStatic`). */
  #static: { n: number; b: number } | null = null;
  /** Loop bodies being generated around the current point. */
  #loops = 0;
  /** Keys read without an own-property check, guarded once at function entry (see `#own`). */
  readonly #guardPlain = new Set<string>();
  readonly #guardObject = new Set<string>();
  /**
   * Variables that paths are read from (the data, items, locals, cached prefixes), each
   * with a marker line right after its assignment; a read base is `v ?? EMPTY` (an empty
   * frozen object) assigned there, so reads from it need no null check of their own.
   */
  readonly #baseable = new Set<string>();
  readonly #bases = new Map<string, string>();
  /** IR local name → the variable holding it (names are unique per tree). */
  readonly #locals = new Map<string, Expr>();
  #out: string[] = [];
  #usesVar = false;

  constructor(ops: Operations, options: GenerateOptions = {}) {
    this.#ops = ops;
    this.#strictOwn = options.strictOwnProperties ?? false;
    this.#budget = options.budget ?? false;
    this.#options = options;
    this.#limits = options.output ?? null;
  }

  generate(root: Node): GeneratedRule {
    const scope: Scope = { data: 'd', nullable: true, cache: new Map() };
    this.#prepareScope(root, scope);
    this.#baseable.add('d');
    this.#out.push(`\u0001BASE d`);
    const result = this.value(root, scope);
    const body = this.#out;
    if (this.#steps !== null) body.unshift(`${this.#steps} = ${numberLiteral(this.#limits!.steps)};`);
    const params = this.#budget ? 'd, b' : 'd';
    const guard = this.#entryGuard();
    if (guard !== null) {
      // Prototype pollution since compile time: this call runs the variant that checks
      // Object.hasOwn on every read (generated on first need).
      let strict: GeneratedRule['fn'] | undefined;
      const ops = this.#ops;
      const options: GenerateOptions = { ...this.#options, strictOwnProperties: true };
      const slow = (d: unknown, b?: { steps: number }) => (strict ??= generate(root, ops, options).fn)(d, b);
      const fallback = this.#constant(slow, 'f');
      if (this.#limits === null) {
        // In a rule the check is a function of its own: inline it would count against
        // the optimiser's inlining budget for the rule's caller (it is inlined where
        // that pays).
        this.#prologue.push(`function guard() { return ${guard}; }`);
        body.unshift(`if (!guard()) return ${fallback}(${params});`);
      } else {
        // A mapping is too large to be inlined anyway, and inline the optimiser folds
        // every check to a constant (the prototypes are constants of this function's
        // own context). As a function, past its inlining size, it cost about 4 ns a call
        // (measured on the GA4 benchmark mapping, 17 keys: 68 checks).
        body.unshift(`if (!(${guard})) return ${fallback}(${params});`);
      }
    }
    const locals = [...this.#temps];
    if (this.#usesVar) locals.push('vp', 'vv');
    const bases = this.#bases;
    const withBases = (line: string): string[] => {
      const m = /^(\s*)\u0001BASE (\w+)$/.exec(line);
      if (m === null) return [line];
      const base = bases.get(m[2]!);
      return base === undefined ? [] : [`${m[1]}${base} = ${m[2]} ?? EMPTY;`];
    };
    const lines = body.flatMap((line) => withBases(`  ${line}`));
    const L = this.#limits;
    const head = [
      '"use strict";',
      `// #${++serial}`,
      `const { ${RUNTIME_NAMES.join(', ')} } = R;`,
      ...this.#prologue,
    ];
    const declared = locals.length ? [`  let ${locals.join(', ')};`] : [];
    // Mapping mode: the function the caller keeps is generated here too, with its
    // `apply` (output and bytes), so each mapping has call sites of its own. A shared
    // JavaScript wrapper would share one feedback vector among every mapping: its call
    // to the mapping goes polymorphic (deoptimizing on each new one) and the optimiser
    // stops inlining through it. Limits throw from the generated code itself (`#fail`),
    // so there is nothing to catch here.
    const source = (
      L === null
        ? [...head, `return function compiledRule(${params}) {`, ...declared, ...lines, `  return ${result.code};`, '};']
        : [
            ...head,
            `function compiledMapping(${params}) {`,
            ...declared,
            ...lines,
            `  return ${result.code} ?? null;`,
            '}',
            `function apply(${params}) {`,
            `  const output = compiledMapping(${params});`,
            '  return { output, bytes: output === null ? 0 : cost.b };',
            '}',
            'return [compiledMapping, apply];',
          ]
    ).join('\n');
    // eslint-disable-next-line no-new-func -- the point of this module; see the file comment.
    const factory = new Function('R', 'K', source) as (r: Runtime, k: readonly unknown[]) => unknown;
    const made = factory(runtime, Object.freeze(this.#consts.slice()));
    if (L === null) return { source, fn: made as GeneratedRule['fn'] };
    const [fn, apply] = made as [GeneratedRule['fn'], NonNullable<GeneratedRule['apply']>];
    return { source, fn, apply };
  }

  // ---------------------------------------------------------------- helpers

  #temp(): string {
    const name = `t${this.#temps.length}`;
    this.#temps.push(name);
    return name;
  }

  /** Marks `code` (a variable just assigned) as a base for path reads (see `#baseable`). */
  #markBase(code: string): void {
    if (!/^t\d+$/.test(code) || this.#baseable.has(code)) return;
    this.#baseable.add(code);
    this.#emit(`\u0001BASE ${code}`);
  }

  /** The read base of a marked variable (created on first use). */
  #readBase(variable: string): string {
    let base = this.#bases.get(variable);
    if (base === undefined) {
      base = this.#temp();
      this.#bases.set(variable, base);
    }
    return base;
  }

  #constant(value: unknown, prefix = 'k'): string {
    let name = this.#constNames.get(value);
    if (name === undefined) {
      name = `${prefix}${this.#consts.length}`;
      this.#prologue.push(`const ${name} = K[${this.#consts.length}];`);
      this.#consts.push(value);
      this.#constNames.set(value, name);
    }
    return name;
  }

  /** `#capture` of a loop body. */
  #captureLoop<T>(fn: () => T): { stmts: string[]; result: T } {
    this.#loops++;
    try {
      return this.#capture(fn);
    } finally {
      this.#loops--;
    }
  }

  /**
   * The lines `fn` emits, apart. Captured code may run conditionally or repeatedly, so
   * static output counts inside it are emitted, not folded (see `#countStatic`), unless
   * `unconditional`: the caller places the lines exactly once, where `fn` was called.
   */
  #capture<T>(fn: () => T, unconditional = false): { stmts: string[]; result: T } {
    const saved = this.#out;
    const savedStatic = this.#static;
    this.#out = [];
    if (!unconditional) this.#static = null;
    try {
      const result = fn();
      return { stmts: this.#out, result };
    } finally {
      this.#out = saved;
      this.#static = savedStatic;
    }
  }

  /**
   * Counts `n` values and `b` bytes of output that are known at compile time. In code
   * that runs exactly once per output (`#static` set, see `#output`) they are summed
   * here and start the counters; elsewhere they are added where they happen.
   */
  #countStatic(n: number, b: number): void {
    if (this.#static !== null) {
      this.#static.n += n;
      this.#static.b += b;
      return;
    }
    const c = this.#counters!;
    const parts = [...(n ? [`${c.n} += ${n};`] : []), ...(b ? [`${c.b} += ${b};`] : [])];
    if (parts.length) this.#emit(parts.join(' '));
  }

  #emit(...lines: string[]): void {
    this.#out.push(...lines);
  }

  #indent(lines: readonly string[]): string[] {
    return lines.map((l) => `  ${l}`);
  }

  isPure(node: Node): boolean {
    let pure = this.#pure.get(node);
    if (pure === undefined) {
      pure = this.#computePure(node);
      this.#pure.set(node, pure);
    }
    return pure;
  }

  #computePure(node: Node): boolean {
    switch (node.type) {
      case 'literal':
      case 'data':
        return true;
      case 'var':
        return node.fallback === null || this.isPure(node.fallback);
      case 'dynamic_var':
        return this.isPure(node.path) && (node.fallback === null || this.isPure(node.fallback));
      case 'array':
        return node.items.every((n) => this.isPure(n));
      case 'if':
        return node.branches.every((b) => this.isPure(b.test) && this.isPure(b.then)) &&
          (node.otherwise === null || this.isPure(node.otherwise));
      case 'and':
      case 'or':
      case 'compare':
      case 'arith':
      case 'missing':
        return node.args.every((n) => this.isPure(n));
      case 'call':
        return (this.#ops.get(node.op)?.pure ?? false) && node.args.every((n) => this.isPure(n));
      case 'not':
        return this.isPure(node.arg);
      case 'missing_some':
        return this.isPure(node.need) && this.isPure(node.keys);
      case 'iterate':
        return this.isPure(node.source) && this.isPure(node.body);
      case 'reduce':
        return this.isPure(node.source) && this.isPure(node.body) &&
          (node.initial === null || this.isPure(node.initial));
      case 'local':
        return true;
      case 'let':
      case 'get':
      case 'index':
      case 'object':
      case 'concat':
      case 'coalesce':
        return sameScopeChildren(node).every((n) => this.isPure(n));
      case 'output':
        // A drop or an assignment is local to the fresh object: only calls can have effects.
        return stmtChildren(node.body).every((n) => this.isPure(n));
    }
  }

  /** Turns an expression into a variable (emitting the assignment now). */
  #materialize(expr: Expr, variable = false): Expr {
    if (expr.atom && (!variable || /^[A-Za-z_]\w*$/.test(expr.code))) return expr;
    const t = this.#temp();
    this.#emit(`${t} = ${expr.code};`);
    return { code: t, kind: expr.kind, atom: true, pure: true };
  }

  /**
   * Generates arguments left to right. When an argument needs statements,
   * earlier arguments that are not yet evaluated (and could be observed) are
   * stored first, so evaluation order stays json-logic-js's.
   */
  #args(nodes: readonly Node[], scope: Scope): Expr[] {
    const out: Expr[] = [];
    for (const node of nodes) {
      const { stmts, result } = this.#capture(() => this.value(node, scope));
      if (stmts.length > 0) {
        for (let i = 0; i < out.length; i++) {
          const e = out[i] as Expr;
          if (!e.atom && !e.pure) out[i] = this.#materialize(e);
        }
        this.#emit(...stmts);
      }
      out.push(result);
    }
    return out;
  }

  // ---------------------------------------------------------------- truthiness

  /** JavaScript whose JS truthiness equals the JSON-Logic truthiness of `expr`. */
  #truthyOf(expr: Expr): string {
    switch (expr.kind) {
      case 'boolean':
      case 'number':
      case 'string':
      case 'null':
        return expr.code;
      case 'array':
        return `(${expr.code}.length !== 0)`;
      case 'any': {
        if (expr.atom && /^[A-Za-z_]\w*$/.test(expr.code)) {
          return `(isArray(${expr.code}) ? ${expr.code}.length !== 0 : ${expr.code})`;
        }
        const t = this.#temp();
        return `(isArray(${t} = ${expr.code}) ? ${t}.length !== 0 : ${t})`;
      }
    }
  }

  /** A condition for `node`: JS truthiness of the result equals its JSON-Logic truthiness. */
  test(node: Node, scope: Scope): string {
    switch (node.type) {
      case 'literal':
        return runtime.truthy(node.value) ? 'true' : 'false';
      case 'not':
        return node.negate ? `(!${this.test(node.arg, scope)})` : this.test(node.arg, scope);
      case 'and':
      case 'or':
        return this.#testLogic(node.type, node.args, scope);
      case 'var': {
        const read = this.#staticRead(node, scope);
        if (read === null) break;
        const v = read.value;
        return `(${read.conds} ? (isArray(${v}) ? ${v}.length !== 0 : ${v}) : ${runtime.truthy(read.fallback)})`;
      }
      case 'missing': {
        const keys = this.#staticMissingKeys(node.args);
        if (keys !== null && keys.length === 0) return 'false';
        if (keys !== null) return `(${keys.map((k) => this.#isMissing(k, scope)).join(' || ')})`;
        break;
      }
      case 'missing_some': {
        const keysNode = node.keys;
        const keys = keysNode.type === 'literal' && Array.isArray(keysNode.value) ? this.#staticMissingKeys([keysNode]) : null;
        if (keys !== null && node.need.type === 'literal' && typeof node.need.value === 'number' && keys.length > 0) {
          const need = node.need.value;
          // Truthy iff some key is missing and fewer than `need` are present; the
          // usual needs reduce to short-circuit chains.
          if (need <= 0) return 'false';
          if (need === 1) return `(${keys.map((k) => this.#isMissing(k, scope)).join(' && ')})`;
          if (need >= keys.length) return `(${keys.map((k) => this.#isMissing(k, scope)).join(' || ')})`;
          const t = this.#temp();
          const count = keys.map((k) => `(${this.#isMissing(k, scope)} ? 1 : 0)`).join(' + ');
          // Truthy iff some key is missing and fewer than `need` are present.
          return `((${t} = ${count}) > 0 && ${keys.length} - ${t} < ${numberLiteral(node.need.value)})`;
        }
        break;
      }
      default:
        break;
    }
    return this.#truthyOf(this.value(node, scope));
  }

  #testLogic(op: 'and' | 'or', args: readonly Node[], scope: Scope): string {
    const parts = args.map((a) => this.#capture(() => this.test(a, scope)));
    if (parts.length <= MAX_INLINE_CHAIN && parts.every((p) => p.stmts.length === 0)) {
      return `(${parts.map((p) => p.result).join(op === 'and' ? ' && ' : ' || ')})`;
    }
    // A flat labelled block keeps the short circuit without nesting (deep
    // nesting would overflow the JavaScript parser on long chains).
    const r = this.#temp();
    const label = `${r}_`;
    const lines = [`${label}: {`];
    parts.forEach((p, i) => {
      lines.push(...this.#indent(p.stmts), `  ${r} = ${p.result} ? true : false;`);
      if (i + 1 < parts.length) lines.push(`  if (${op === 'and' ? '!' : ''}${r}) break ${label};`);
    });
    lines.push('}');
    this.#emit(...lines);
    return r;
  }

  // ---------------------------------------------------------------- values

  value(node: Node, scope: Scope): Expr {
    switch (node.type) {
      case 'literal':
        return this.literal(node.value);
      case 'array': {
        const items = this.#args(node.items, scope);
        return { code: `[${items.map((i) => i.code).join(', ')}]`, kind: 'array', atom: false, pure: items.every((i) => i.pure) };
      }
      case 'data':
        return this.#scopeData(scope);
      case 'var':
        return this.#var(node.path, node.fallback, scope);
      case 'dynamic_var': {
        const [path, fallback] = this.#args(node.fallback ? [node.path, node.fallback] : [node.path], scope);
        const data = this.#scopeData(scope);
        return { code: `getVar(${data.code}, ${path!.code}, ${fallback ? fallback.code : 'null'})`, kind: 'any', atom: false, pure: this.isPure(node) };
      }
      case 'if':
        return this.#if(node.branches, node.otherwise, scope);
      case 'and':
      case 'or':
        return this.#logic(node.type, node.args, scope);
      case 'not': {
        const t = this.test(node.arg, scope);
        return { code: node.negate ? `(!${t})` : `(!!${t})`, kind: 'boolean', atom: false, pure: this.isPure(node) };
      }
      case 'compare':
        return this.#compare(node.op, node.args, scope);
      case 'arith':
        return this.#arith(node.op, node.args, scope);
      case 'call':
        return this.#call(node.op, node.args, node.at ?? '', scope);
      case 'missing':
        return this.#missing(node.args, scope);
      case 'missing_some': {
        const [need, keys] = this.#args([node.need, node.keys], scope);
        const data = this.#scopeData(scope);
        return { code: `missingSome(${data.code}, ${need!.code}, ${keys!.code})`, kind: 'array', atom: false, pure: this.isPure(node) };
      }
      case 'iterate':
        if (node.param !== undefined) return this.#lambdaIterate(node.op, node.source, node.body, node.param, node.index, scope);
        return this.#iterate(node.op, node.source, node.body, scope);
      case 'reduce':
        return this.#reduce(node.source, node.body, node.initial, scope);
      case 'local': {
        const local = this.#locals.get(node.name);
        if (local === undefined) throw new Error(`internal: unbound local ${node.name}`);
        return local;
      }
      case 'let': {
        const value = this.#materialize(this.value(node.value, scope), true);
        this.#markBase(value.code);
        this.#bindLocal(node.name, value);
        return this.value(node.body, scope);
      }
      case 'get': {
        const object = this.#materialize(this.value(node.object, scope), true);
        if (node.path.some((s) => FORBIDDEN_SEGMENTS.has(s))) return this.literal(null);
        if (node.path.length === 0) return object;
        const parts = this.#pathConds(object.code, true, node.path);
        return { code: `(${parts.conds} ? ${parts.value} : null)`, kind: 'any', atom: false, pure: true };
      }
      case 'index': {
        const [object, key] = this.#args([node.object, node.key], scope) as [Expr, Expr];
        return { code: `getKey(${object.code}, ${key.code})`, kind: 'any', atom: false, pure: object.pure && key.pure };
      }
      case 'object':
        return this.#object(node.entries, scope);
      case 'concat': {
        const parts = this.#args(node.parts, scope);
        return { code: `concatArrays(${parts.map((p) => p.code).join(', ')})`, kind: 'array', atom: false, pure: parts.every((p) => p.pure) };
      }
      case 'coalesce':
        return this.#coalesce(node.args, scope);
      case 'output':
        return this.#output(node.body, scope);
    }
  }

  // ---------------------------------------------------------------- DSL forms

  #bindLocal(name: string, value: Expr): void {
    if (this.#locals.has(name)) throw new Error(`internal: local ${name} bound twice`);
    this.#locals.set(name, value);
  }

  /** Property key text for generated code; a forbidden key can never be emitted. */
  #key(key: string): string {
    if (FORBIDDEN_SEGMENTS.has(key)) throw new Error(`internal: forbidden key ${key}`);
    return stringLiteral(key);
  }

  #object(entries: readonly ObjectEntry[], scope: Scope): Expr {
    const keys = entries.flatMap((e) => ('spread' in e ? [] : [e.key]));
    if (keys.length === entries.length && new Set(keys).size === keys.length) {
      // Values in order, then one object literal (one allocation, one stable shape).
      const values = this.#args(entries.map((e) => (e as { value: Node }).value), scope);
      return this.#literalObject(keys, values.map((v) => (v.kind === 'null' ? v : this.#materialize(v, true))));
    }
    const o = this.#temp();
    this.#emit(`${o} = {};`);
    for (const entry of entries) {
      if ('spread' in entry) {
        const v = this.value(entry.spread, scope);
        this.#emit(`mergeInto(${o}, ${v.code});`);
        continue;
      }
      this.#assign(o, this.#key(entry.key), this.value(entry.value, scope));
    }
    return { code: o, kind: 'any', atom: true, pure: true, nonNull: true };
  }

  /**
   * A fresh object with `keys` (distinct) whose values are atoms, leaving out null
   * values: one literal with every key when none is null (the usual case, and always
   * the same hidden class); else, in a loop, `objectOf`; else a literal without the one
   * null value (an optional field absent), or the keys one by one.
   * In mapping mode, values placed with a null slot in `mask` (`#sink`) have recorded
   * their nullness there, so the usual case costs one test of the mask, not one per value.
   */
  #literalObject(keys: readonly string[], values: readonly Expr[], owned = false, mask?: string): Expr {
    const o = this.#temp();
    // Owned values (see `#sink`) are never undefined.
    const isSet = (code: string) => (owned ? `${code} !== null` : `${code} != null`);
    const present = keys
      .map((k, i) => ({ raw: k, key: this.#key(k), value: values[i]!, bit: i < MAX_MASK_BITS ? 2 ** i : 0 }))
      .filter((e) => e.value.kind !== 'null');
    const maybeNull = present.filter((e) => e.value.kind === 'any' && !e.value.nonNull);
    const flagged = maybeNull.filter((e) => e.bit !== 0 && e.value.nullFlag?.mask === mask && e.value.nullFlag?.bit === e.bit);
    const tested = maybeNull.filter((e) => !flagged.includes(e));
    const literal = (skip?: object) => `{ ${present.filter((e) => e !== skip).map((e) => `${e.key}: ${e.value.code}`).join(', ')} }`;
    if (maybeNull.length === 0) {
      this.#emit(`${o} = ${literal()};`);
      return { code: o, kind: 'any', atom: true, pure: true, nonNull: true };
    }
    const allSet = [...(flagged.length > 0 ? [`${mask} === 0`] : []), ...tested.map((e) => isSet(e.value.code))].join(' && ');
    if (this.#loops > 0) {
      // In a loop, a rarely taken path in line would cost the loop more than a call.
      const keysConst = this.#constant(Object.freeze(present.map((e) => e.raw)));
      this.#emit(`${o} = ${allSet} ? ${literal()} : objectOf(${keysConst}, ${present.map((e) => e.value.code).join(', ')});`);
      return { code: o, kind: 'any', atom: true, pure: true, nonNull: true };
    }
    const oneByOne = [
      `${o} = {};`,
      ...present.map((e) => `${maybeNull.includes(e) ? `if (${e.value.code} != null) ` : ''}${o}[${e.key}] = ${e.value.code};`),
    ];
    let otherwise = oneByOne;
    if (maybeNull.length === 1) {
      otherwise = [`${o} = ${literal(maybeNull[0])};`];
    } else if (maybeNull.length <= MAX_LITERAL_VARIANTS && maybeNull.every((e) => e.bit !== 0)) {
      // Exactly one value null (an optional field absent): a literal without it.
      const nulls = [...(flagged.length > 0 ? [mask!] : []), ...tested.map((e) => `(${e.value.code} == null ? ${e.bit} : 0)`)];
      const m = nulls.length === 1 && tested.length === 0 ? mask! : this.#temp();
      otherwise = [
        ...(m === mask ? [] : [`${m} = ${nulls.join(' | ')};`]),
        `switch (${m}) {`,
        ...maybeNull.map((skip) => `  case ${skip.bit}: ${o} = ${literal(skip)}; break;`),
        '  default:',
        ...oneByOne.map((l) => `    ${l}`),
        '}',
      ];
    }
    this.#emit(`if (${allSet}) ${o} = ${literal()};`, 'else {', ...this.#indent(otherwise), '}');
    return { code: o, kind: 'any', atom: true, pure: true, nonNull: true };
  }

  /** `target[key] = value` unless the value is null (or undefined). */
  #assign(target: string, key: string, value: Expr): void {
    if (value.kind === 'null') return;
    if (value.kind !== 'any' || value.nonNull) {
      this.#emit(`${target}[${key}] = ${value.code};`);
      return;
    }
    const v = value.atom && /^[A-Za-z_]\w*$/.test(value.code) ? value.code : this.#temp();
    const read = v === value.code ? v : `(${v} = ${value.code})`;
    this.#emit(`if (${read} != null) ${target}[${key}] = ${v};`);
  }

  #coalesce(args: readonly Node[], scope: Scope): Expr {
    const parts = args.map((a) => this.#capture(() => this.value(a, scope)));
    const kind = union(parts.map((p) => p.result.kind));
    const pure = parts.every((p) => p.result.pure);
    const r = this.#temp();
    if (parts.length <= MAX_INLINE_CHAIN && parts.every((p) => p.stmts.length === 0)) {
      let code = parts[parts.length - 1]!.result.code;
      for (let i = parts.length - 2; i >= 0; i--) code = `((${r} = ${parts[i]!.result.code}) != null ? ${r} : ${code})`;
      return { code, kind, atom: false, pure };
    }
    const label = `${r}_`;
    const lines = [`${label}: {`];
    parts.forEach((p, i) => {
      lines.push(...this.#indent(p.stmts), `  ${r} = ${p.result.code};`);
      if (i + 1 < parts.length) lines.push(`  if (${r} != null) break ${label};`);
    });
    lines.push('}');
    this.#emit(...lines);
    return { code: r, kind, atom: true, pure: true };
  }

  /** Mapping mode: the local holding the array steps left. */
  #stepsVar(): string {
    return (this.#steps ??= this.#temp());
  }

  /** The budget check for one array step. */
  #step(): string[] {
    if (this.#limits) return [`if (--${this.#stepsVar()} < 0) ${this.#fail('steps')};`];
    return this.#budget ? ['if (--b.steps < 0) overBudget();'] : [];
  }

  /**
   * map / filter / some / every / sum / first / count with a lambda: the item (and its
   * index) are locals, the scope stays. `sinkDepth`: a map building output at that depth
   * (see `#sink`); its items are adopted into the output.
   */
  #lambdaIterate(op: string, sourceNode: Node, bodyNode: Node, param: string, index: string | undefined, scope: Scope, sinkDepth?: number): Expr {
    const source = this.#materialize(this.value(sourceNode, scope), true);
    const r = this.#temp();
    const i = this.#temp();
    const n = this.#temp();
    const item = this.#temp();
    this.#baseable.add(item);
    this.#bindLocal(param, { code: item, kind: 'any', atom: true, pure: true });
    if (index !== undefined) this.#bindLocal(index, { code: i, kind: 'number', atom: true, pure: true, finite: true });
    // Operations that visit every item take their steps at once.
    const visitsAll = op === 'map' || op === 'filter' || op === 'sum' || op === 'count';
    const upfront = visitsAll && this.#limits !== null;
    const loop = (bodyLines: string[]): string[] => [
      `if (isArray(${source.code})) {`,
      `  ${n} = ${source.code}.length;`,
      ...(upfront ? [`  if ((${this.#stepsVar()} -= ${n}) < 0) ${this.#fail('steps')};`] : []),
      `  for (${i} = 0; ${i} < ${n}; ${i}++) {`,
      ...(upfront ? [] : this.#indent(this.#indent(this.#step()))),
      `    ${item} = ${source.code}[${i}];`,
      `    if (${item} === undefined) ${item} = null;`,
      `    \u0001BASE ${item}`,
      ...this.#indent(this.#indent(bodyLines)),
      '  }',
      '}',
    ];
    let kind: Kind;
    let lines: string[];
    if (op === 'map') {
      // Every item is stored: the array is allocated at its length.
      let upfrontCount: string | undefined;
      const c = this.#counters;
      let stmts: string[];
      let v: string;
      if (sinkDepth !== undefined && c !== null) {
        // What every item costs for sure (the slot, and the object the body builds, if
        // it does) is counted once for all items, before the loop.
        const perItem = { n: 1, b: 9 };
        const body = this.#captureLoop(() => this.#sink(bodyNode, scope, sinkDepth + 1, undefined, perItem));
        stmts = body.stmts;
        v = body.result.code;
        upfrontCount = `${c.n} += ${n} * ${perItem.n}; ${c.b} += ${n} * ${perItem.b};`;
      } else {
        const body = this.#captureLoop(() => this.value(bodyNode, scope));
        const check = body.result.kind === 'any' && !body.result.nonNull;
        v = check ? `((${r}_v = ${body.result.code}) === undefined ? null : ${r}_v)` : body.result.code;
        if (check) this.#temps.push(`${r}_v`);
        stmts = body.stmts;
      }
      const [open, length, ...rest] = loop([...stmts, `${r}[${i}] = ${v};`]);
      // `new ArrayCtor(n)` here, not in a helper: the allocation site (and what V8 learns
      // from it: element kind, old-space pretenuring) is then this map's own.
      if (rest.pop() !== '}') throw new Error('internal: unexpected loop shape');
      lines = [open!, length!, `  ${r} = new ArrayCtor(${n});`, ...(upfrontCount ? [`  ${upfrontCount}`] : []), ...rest, `} else ${r} = [];`];
      kind = 'array';
    } else if (op === 'sum') {
      const body = this.#captureLoop(() => this.value(bodyNode, scope));
      lines = [`${r} = 0;`, ...loop([...body.stmts, `${r} += sumValue(${body.result.code});`])];
      kind = 'number';
    } else {
      const body = this.#captureLoop(() => this.test(bodyNode, scope));
      const t = body.result;
      switch (op) {
        case 'filter':
          lines = [`${r} = [];`, ...loop([...body.stmts, `if (${t}) ${r}.push(${item});`])];
          kind = 'array';
          break;
        case 'count':
          lines = [`${r} = 0;`, ...loop([...body.stmts, `if (${t}) ${r}++;`])];
          kind = 'number';
          break;
        case 'first':
          lines = [`${r} = null;`, ...loop([...body.stmts, `if (${t}) { ${r} = ${item}; break; }`])];
          kind = 'any';
          break;
        case 'some':
          lines = [`${r} = false;`, ...loop([...body.stmts, `if (${t}) { ${r} = true; break; }`])];
          kind = 'boolean';
          break;
        case 'every':
        case 'all':
          lines = [`${r} = true;`, ...loop([...body.stmts, `if (!${t}) { ${r} = false; break; }`])];
          kind = 'boolean';
          break;
        case 'none':
          lines = [`${r} = true;`, ...loop([...body.stmts, `if (${t}) { ${r} = false; break; }`])];
          kind = 'boolean';
          break;
        default:
          throw new Error(`internal: lambda op ${op}`);
      }
    }
    this.#emit(...lines);
    return { code: r, kind, atom: true, pure: true, nonNull: true };
  }

  // ---------------------------------------------------------------- owned mapping output

  /**
   * Mapping mode: `node`'s value, placed in the output at `depth` (the root is 0), as
   * an atom the output may hold. Objects, arrays and maps written in the mapping are
   * built fresh right here; any other value is adopted: strings and finite numbers as
   * they are, in line, anything else through `own` (booleans as they are, null for
   * non-JSON values, a checked copy for objects and arrays, so the output never shares
   * anything with the event; what a copy holds is counted in `runtime.cost`).
   * Containers count their entries statically (values, and bytes as key + value upper
   * bounds); strings add their length. `slot`: the value is one of an object literal's
   * (see `#literalObject`); when it turns out null, its bit is set in the slot's mask.
   */
  #sink(node: Node, scope: Scope, depth: number, slot?: NullSlot, count?: { n: number; b: number }): Expr {
    const L = this.#limits!;
    const c = this.#counters!;
    if (depth > L.depth) {
      const v = this.#materialize(this.value(node, scope), true);
      if (v.kind !== 'null') this.#emit(`if (${v.code} != null) ${this.#fail('depth')};`);
      return this.literal(null);
    }
    switch (node.type) {
      case 'object': {
        const keys = node.entries.flatMap((e) => ('spread' in e ? [] : [e.key]));
        if (keys.length === node.entries.length && new Set(keys).size === keys.length) {
          const mask = this.#temp();
          const placed = this.#capture(() =>
            node.entries.map((e, i) => this.#sink((e as { value: Node }).value, scope, depth + 1, i < MAX_MASK_BITS ? { mask, bit: 2 ** i } : undefined)), true);
          if (placed.result.some((v) => v.nullFlag?.mask === mask)) this.#emit(`${mask} = 0;`);
          const bytes = 2 + keys.reduce((a, k) => a + k.length + 12, 0);
          this.#emit(...placed.stmts);
          if (count) {
            count.n += keys.length;
            count.b += bytes;
          } else this.#countStatic(keys.length, bytes);
          return this.#literalObject(keys, placed.result, true, mask);
        }
        const o = this.#temp();
        this.#emit(`${o} = {};`);
        this.#countStatic(0, 2);
        for (const entry of node.entries) {
          if ('spread' in entry) {
            const v = this.value(entry.spread, scope);
            this.#emit(`mergeOwn(${o}, ${v.code}, ${depth + 1}, ${this.#limitsConst()});`);
            continue;
          }
          const v = this.#sink(entry.value, scope, depth + 1);
          this.#countStatic(1, entry.key.length + 12);
          this.#assign(o, this.#key(entry.key), v);
        }
        return { code: o, kind: 'any', atom: true, pure: true, nonNull: true };
      }
      case 'array': {
        const items = node.items.map((item) => this.#sink(item, scope, depth + 1));
        this.#countStatic(items.length, 2 + 9 * items.length);
        const a = this.#temp();
        this.#emit(`${a} = [${items.map((i) => i.code).join(', ')}];`);
        return { code: a, kind: 'array', atom: true, pure: true, nonNull: true };
      }
      case 'iterate':
        if (node.param !== undefined && node.op === 'map') {
          const r = this.#lambdaIterate(node.op, node.source, node.body, node.param, node.index, scope, depth);
          this.#countStatic(0, 2);
          return r;
        }
        break;
      case 'if': {
        // Each branch builds its value in place (`em == null ? null : [em]` makes no copy).
        const r = this.#temp();
        const label = `${r}_`;
        const lines = [`${label}: {`];
        for (const branch of node.branches) {
          const test = this.#capture(() => this.test(branch.test, scope));
          const then = this.#capture(() => this.#sink(branch.then, scope, depth));
          lines.push(
            ...this.#indent(test.stmts),
            `  if (${test.result}) {`,
            ...this.#indent(this.#indent([...then.stmts, `${r} = ${then.result.code};`, `break ${label};`])),
            '  }',
          );
        }
        const last = this.#capture(() => (node.otherwise ? this.#sink(node.otherwise, scope, depth) : this.literal(null)));
        lines.push(...this.#indent([...last.stmts, `${r} = ${last.result.code};`]), '}');
        this.#emit(...lines);
        return { code: r, kind: 'any', atom: true, pure: true };
      }
      case 'concat': {
        const parts = this.#args(node.parts, scope);
        const a = this.#temp();
        this.#emit(`${a} = concatOwn(${depth}, ${this.#limitsConst()}${parts.map((p) => `, ${p.code}`).join('')});`);
        return { code: a, kind: 'array', atom: true, pure: true, nonNull: true };
      }
      case 'literal': {
        const v = node.value;
        if (v === null) return this.literal(null);
        if (typeof v === 'string') {
          this.#countStatic(0, v.length);
          return this.literal(v);
        }
        if (typeof v === 'number') return Number.isFinite(v) ? this.literal(v) : this.literal(null);
        if (typeof v === 'boolean') return this.literal(v);
        break;
      }
      default:
        break;
    }
    // A path read that yields undefined when absent: adopting it makes that null.
    const raw = this.#rawRead(node, scope);
    const v: Expr = raw !== null ? { code: raw, kind: 'any', atom: false, pure: true } : this.value(node, scope);
    // When the value turns out null: record it in the slot's mask (see `#literalObject`).
    const flag = slot === undefined ? '' : ` ${slot.mask} |= ${slot.bit};`;
    switch (v.kind) {
      case 'null':
        return v;
      case 'string': {
        const t = this.#materialize(v, true);
        this.#emit(`${c.b} += ${t.code}.length;`);
        return { ...t, nonNull: true };
      }
      case 'boolean':
        return { ...this.#materialize(v, true), nonNull: true };
      case 'number': {
        if (v.finite) return { ...this.#materialize(v, true), nonNull: true };
        const t = this.#temp();
        this.#emit(`if ((${t} = ${v.code}) - ${t} !== 0) { ${t} = null;${flag} }`);
        return { code: t, kind: 'any', atom: true, pure: true, nullFlag: slot };
      }
      default: {
        // Strings and finite numbers, the usual values, are placed in line (a string
        // counts its length); anything else goes through `own`. (Two plain tests: a
        // third, for null or booleans, or a conditional test, measured slower.)
        const t = this.#temp();
        this.#emit(
          `if (typeof (${t} = ${v.code}) === "string") ${c.b} += ${t}.length;`,
          `else if (typeof ${t} !== "number" || ${t} - ${t} !== 0) {`,
          `  ${t} = own(${t}, ${depth}, ${this.#limitsConst()});${flag ? ` if (${t} === null)${flag}` : ''}`,
          '}',
        );
        return { code: t, kind: 'any', atom: true, pure: true, nullFlag: slot };
      }
    }
  }

  /**
   * For `#sink`: a one-segment read of a static path from a read base that needs no
   * own-property check, as a plain property load (undefined when absent), or null
   * when the read needs the general form.
   */
  #rawRead(node: Node, scope: Scope): string | null {
    let base: string;
    let segments: readonly string[];
    if (node.type === 'var') {
      if (node.fallback !== null || scope.reduce || scope.data === null) return null;
      const cached = this.#cachedBase(node.path, scope, false);
      base = cached.base;
      segments = cached.rest;
    } else if (node.type === 'get') {
      if (node.object.type !== 'local') return null;
      const local = this.#locals.get(node.object.name);
      if (local === undefined) return null;
      base = local.code;
      segments = node.path;
    } else {
      return null;
    }
    if (segments.length !== 1 || !this.#baseable.has(base) || this.#strictOwn) return null;
    const segment = segments[0]!;
    if (FORBIDDEN_SEGMENTS.has(segment) || keyGuard(segment) !== 'none') return null;
    const key = stringLiteral(segment);
    this.#own('vp', segment, key); // registers the key with the entry guard
    return `${this.#readBase(base)}[${key}]`;
  }

  #limitsConst(): string {
    const L = this.#limits!;
    return this.#constant(this.#frozenLimits ??= Object.freeze({ nodes: L.nodes, bytes: L.bytes, depth: L.depth, raise: L.raise }), 'k');
  }

  /** Code that throws for a run-time limit: the caller's error when it gave one (`OutputLimits.raise`). */
  #fail(limit: LimitKind): string {
    const raise = this.#limits?.raise;
    if (raise !== undefined) return `${this.#constant(raise, 'f')}(${stringLiteral(limit)})`;
    return limit === 'steps' ? 'overBudget()' : `overLimit(${stringLiteral(limit)})`;
  }

  #frozenLimits: OutputLimits | undefined;

  // ---------------------------------------------------------------- output statements

  #output(body: readonly Stmt[], scope: Scope): Expr {
    if (this.#limits === null) return this.#outputStatements(body, scope);
    const saved = this.#counters;
    const counters = { n: this.#temp(), b: this.#temp() };
    this.#counters = counters;
    try {
      const L = this.#limits;
      const tree = simpleOutput(body);
      if (tree !== null) {
        // Only bindings and assignments to distinct paths: evaluate in order, then
        // build the whole output as nested object literals.
        // Straight-line code, placed once: its static counts start the counters.
        // (`#capture` restores the outer `#static` afterwards.)
        const start = { n: 1, b: 2 };
        const lines = this.#capture(() => {
          this.#static = start;
          return this.#outputTree(tree, body, scope);
        }, true);
        const o = lines.result;
        this.#emit(
          `${counters.n} = ${start.n}; ${counters.b} = ${start.b}; cost.n = 0; cost.b = 0;`,
          ...lines.stmts,
          `if (${counters.n} + cost.n > ${L.nodes}) ${this.#fail('nodes')};`,
          `if ((cost.b += ${counters.b}) > ${L.bytes}) ${this.#fail('bytes')};`,
        );
        return o;
      }
      const o = this.#temp();
      const label = `${o}_`;
      const block: OutputBlock = { root: o, label, known: new Map([['', o]]), assigned: new Set(), invalidated: [], merged: false };
      const lines = this.#capture(() => this.#stmts(body, scope, block));
      this.#emit(
        `${label}: {`,
        `  ${o} = {};`,
        `  ${counters.n} = 1; ${counters.b} = 2; cost.n = 0; cost.b = 0;`,
        ...this.#indent(lines.stmts),
        `  if (${counters.n} + cost.n > ${L.nodes}) ${this.#fail('nodes')};`,
        `  if ((cost.b += ${counters.b}) > ${L.bytes}) ${this.#fail('bytes')};`,
        '}',
      );
      return { code: o, kind: 'any', atom: true, pure: true };
    } finally {
      this.#counters = saved;
    }
  }

  /** The statements of a simple output in order; returns the root object. */
  #outputTree(tree: OutputTree, body: readonly Stmt[], scope: Scope): Expr {
    // Each assignment's null slot: a bit in its parent object's mask (see `#literalObject`).
    const masks = new Map<OutputTree, string>();
    const slots = new Map<Stmt, NullSlot>();
    const assignSlots = (node: OutputTree): void => {
      [...node.values()].forEach((child, i) => {
        if (child instanceof Map) assignSlots(child);
        else if (i < MAX_MASK_BITS) {
          let mask = masks.get(node);
          if (mask === undefined) masks.set(node, (mask = this.#temp()));
          slots.set(child, { mask, bit: 2 ** i });
        }
      });
    };
    assignSlots(tree);
    const leaves = new Map<Stmt, Expr>();
    const placed = this.#capture(() => {
      for (const stmt of body) {
        if (stmt.type === 'bind') {
          const value = this.#materialize(this.value(stmt.value, scope), true);
          this.#markBase(value.code);
          this.#bindLocal(stmt.name, value);
        } else if (stmt.type === 'set') leaves.set(stmt, this.#sink(stmt.value, scope, stmt.path.length, slots.get(stmt)));
      }
    }, true);
    const used = new Set([...leaves.values()].flatMap((v) => (v.nullFlag ? [v.nullFlag.mask] : [])));
    if (used.size > 0) this.#emit(`${[...used].map((m) => `${m} = 0`).join('; ')};`);
    this.#emit(...placed.stmts);
    const build = (node: OutputTree): Expr => {
      const keys = [...node.keys()];
      const values = keys.map((k) => {
        const child = node.get(k)!;
        return child instanceof Map ? build(child) : leaves.get(child)!;
      });
      this.#countStatic(keys.length, 2 + keys.reduce((a, k) => a + k.length + 12, 0));
      return this.#literalObject(keys, values, true, masks.get(node));
    };
    return build(tree);
  }

  #outputStatements(body: readonly Stmt[], scope: Scope): Expr {
    const o = this.#temp();
    const label = `${o}_`;
    const block: OutputBlock = { root: o, label, known: new Map([['', o]]), assigned: new Set(), invalidated: [], merged: false };
    const lines = this.#capture(() => this.#stmts(body, scope, block));
    this.#emit(`${label}: {`, `  ${o} = {};`, ...this.#indent(lines.stmts), '}');
    return { code: o, kind: 'any', atom: true, pure: true };
  }

  #stmts(stmts: readonly Stmt[], scope: Scope, block: OutputBlock): void {
    for (const stmt of stmts) {
      switch (stmt.type) {
        case 'bind': {
          const value = this.#materialize(this.value(stmt.value, scope), true);
          this.#markBase(value.code);
          this.#bindLocal(stmt.name, value);
          break;
        }
        case 'drop':
          this.#emit(`${block.root} = null;`, `break ${block.label};`);
          return; // nothing after a drop runs
        case 'merge': {
          const v = this.value(stmt.value, scope);
          const c = this.#counters;
          if (c) this.#emit(`mergeOwn(${block.root}, ${v.code}, 1, ${this.#limitsConst()});`);
          else this.#emit(`mergeInto(${block.root}, ${v.code});`);
          block.merged = true;
          invalidate(block, '');
          break;
        }
        case 'when': {
          const test = this.#capture(() => this.test(stmt.test, scope));
          const branch = (list: readonly Stmt[]) => {
            const inner: OutputBlock = { ...block, known: new Map(block.known), assigned: new Set(block.assigned), invalidated: [] };
            const out = this.#capture(() => this.#stmts(list, scope, inner));
            return { lines: out.stmts, inner };
          };
          const then = branch(stmt.then);
          const otherwise = branch(stmt.otherwise);
          this.#emit(...test.stmts, `if (${test.result}) {`, ...this.#indent(then.lines), ...(otherwise.lines.length ? ['} else {', ...this.#indent(otherwise.lines)] : []), '}');
          // What either branch may have replaced is unknown afterwards.
          for (const b of [then.inner, otherwise.inner]) {
            for (const key of b.assigned) block.assigned.add(key);
            for (const key of b.invalidated) invalidate(block, key);
            if (b.merged) block.merged = true;
          }
          break;
        }
        case 'set':
          this.#set(stmt.path, stmt.value, scope, block);
          break;
      }
    }
  }

  /** The value of an assignment: adopted into the output in mapping mode. */
  #setValue(path: readonly (string | number)[], valueNode: Node, scope: Scope): Expr {
    const c = this.#counters;
    if (c === null) return this.value(valueNode, scope);
    const v = this.#sink(valueNode, scope, path.length);
    // Upper bounds for the containers the path may create (index gaps fill with null).
    const slots = path.reduce<number>((a, s) => a + (typeof s === 'number' ? s + 1 : 1), 0);
    const keyBytes = path.reduce<number>((a, s) => a + (typeof s === 'string' ? s.length : 0), 0);
    this.#countStatic(slots, keyBytes + 14 * slots);
    return v;
  }

  #set(path: readonly (string | number)[], valueNode: Node, scope: Scope, block: OutputBlock): void {
    if (path.some((s) => typeof s === 'number')) {
      const value = this.#setValue(path, valueNode, scope);
      const p = this.#constant(Object.freeze(path.map((s) => (typeof s === 'string' ? (this.#key(s), s) : s))));
      this.#emit(`setPath(${block.root}, ${p}, ${value.code});`);
      // setPath copies the containers on its way: any we hold there are stale.
      invalidate(block, String(path[0]));
      block.assigned.add(String(path[0]));
      return;
    }
    const segments = path as readonly string[];
    // The value first (its statements may not run between creating parents and assigning).
    const value = this.#setValue(path, valueNode, scope);
    // Parents: ours when this block (or an enclosing one) made them; otherwise made ours now.
    let parent = block.root;
    for (let i = 0; i < segments.length - 1; i++) {
      const key = segments.slice(0, i + 1).join('\u0000');
      const known = block.known.get(key);
      if (known !== undefined) {
        parent = known;
        continue;
      }
      const t = this.#temp();
      const seg = this.#key(segments[i]!);
      const fresh = !block.merged && ![...block.assigned].some((a) => a === key || key.startsWith(`${a}\u0000`) || a.startsWith(`${key}\u0000`));
      this.#emit(fresh ? `${parent}[${seg}] = ${t} = {};` : `${t} = ensureObject(${parent}, ${seg});`);
      block.known.set(key, t);
      block.assigned.add(key);
      parent = t;
    }
    const last = segments[segments.length - 1]!;
    const key = segments.join('\u0000');
    const before = block.merged || [...block.assigned].some((a) => a === key || a.startsWith(`${key}\u0000`));
    invalidate(block, key);
    block.assigned.add(key);
    if (before) {
      // The field may hold an earlier value: null removes it.
      const v = this.#temp();
      this.#emit(`if ((${v} = ${value.code}) != null) ${parent}[${this.#key(last)}] = ${v}; else delete ${parent}[${this.#key(last)}];`);
      return;
    }
    this.#assign(parent, this.#key(last), value);
  }

  literal(value: unknown): Expr {
    const atom = (code: string, kind: Kind): Expr => ({ code, kind, atom: true, pure: true });
    if (value === null) return atom('null', 'null');
    if (value === undefined) return atom('(void 0)', 'any');
    switch (typeof value) {
      case 'boolean':
        return atom(value ? 'true' : 'false', 'boolean');
      case 'number':
        return atom(numberLiteral(value), 'number');
      case 'string':
        return atom(stringLiteral(value), 'string');
      default:
        break;
    }
    if (Array.isArray(value)) {
      // A fresh array on every evaluation, as json-logic-js builds one.
      const items = value.map((v) => this.literal(v).code);
      return { code: `[${items.join(', ')}]`, kind: 'array', atom: false, pure: true };
    }
    // Non-logic objects are deep-frozen constants (see lower.ts).
    return atom(this.#constant(value), 'any');
  }

  #scopeData(scope: Scope): Expr {
    if (scope.data === null) throw new Error('internal: reduce scope object was not materialised');
    return { code: scope.data, kind: 'any', atom: true, pure: true };
  }

  /**
   * Own-property check for a value already read from `parent[key]` (known to be
   * neither undefined nor, for intermediate segments, null), or null when none is
   * needed in the function body. By `keyGuard(segment)`, decided at compile time:
   * - keys Object.prototype has (`toString`, `valueOf` …): `Object.hasOwn` always;
   * - keys other built-in prototypes have (`length`, `name`, `search` …): own when
   *   the parent's prototype is Object.prototype (a plain object, which the entry
   *   guard checks for pollution of the key), else `Object.hasOwn`;
   * - any other key: an inherited value could only come from a polluted built-in
   *   prototype, which the entry guard (`#entryGuard`) rules out once per call for
   *   every such key the function reads (else the call runs the strict variant), so
   *   the read is a plain load.
   * `strictOwn` (and the strict variant) use `Object.hasOwn` on every read. The guard
   * holds for the whole call: nothing a rule or mapping runs writes to a prototype (a
   * user-registered operation that did would be trusted code misbehaving).
   */
  #own(parent: string, segment: string, key: string): string | null {
    if (this.#strictOwn) return `hasOwn(${parent}, ${key})`;
    switch (keyGuard(segment)) {
      case 'own':
        return `hasOwn(${parent}, ${key})`;
      case 'proto':
        this.#guardObject.add(segment);
        return `(getPrototypeOf(${parent}) === ObjectProto || hasOwn(${parent}, ${key}))`;
      case 'none':
        this.#guardPlain.add(segment);
        return null;
    }
  }

  /**
   * The check at function entry that makes plain reads own reads (see `#own`): the
   * built-in prototypes JSON data can reach have not gained any key this function
   * reads without `hasOwn`. Grouped by prototype so the optimiser loads each once;
   * these are loads of absent properties from constant objects, which it folds.
   */
  #entryGuard(): string | null {
    const checks: string[] = [];
    for (const proto of ['ArrayProto', 'StringProto', 'NumberProto', 'BooleanProto']) {
      for (const key of this.#guardPlain) checks.push(`${proto}[${stringLiteral(key)}] === undefined`);
    }
    for (const key of this.#guardObject) checks.push(`ObjectProto[${stringLiteral(key)}] === undefined`);
    return checks.length === 0 ? null : checks.join(' && ');
  }

  /**
   * Inline read of a static path below `base`, as one expression:
   * json-logic-js semantics (null/undefined stop the walk, a final null is
   * returned, undefined means not found), own properties only.
   */
  #path(base: string, baseNullable: boolean, segments: readonly string[], fallback: Expr): Expr {
    const { conds, value } = this.#pathConds(base, baseNullable, segments);
    return { code: `(${conds} ? ${value} : ${fallback.code})`, kind: 'any', atom: false, pure: fallback.pure };
  }

  /** The condition "path found" (own properties only), after which `value` holds the value. */
  #pathConds(base: string, baseNullable: boolean, segments: readonly string[]): { conds: string; value: string } {
    if (segments.length === 0) return { conds: baseNullable ? `${base} !== undefined` : 'true', value: base };
    this.#usesVar = true;
    // From a marked variable's read base no null check is needed: null and undefined read as {}.
    const conds: string[] = this.#baseable.has(base) ? [] : [`(vv = ${base}) != null`];
    let from = conds.length === 0 ? this.#readBase(base) : 'vv';
    segments.forEach((segment, i) => {
      const key = stringLiteral(segment);
      const last = i === segments.length - 1;
      const own = this.#own('vp', segment, key);
      const read = own === null ? `(vv = ${from}[${key}])` : `(vv = (vp = ${from})[${key}])`;
      from = 'vv';
      conds.push(last ? `${read} !== undefined` : `${read} != null`);
      if (own !== null) conds.push(own);
    });
    return { conds: `(${conds.join(' && ')})`, value: 'vv' };
  }

  /** How to read a static path in `scope`: a condition and the variable holding the value, or never found. */
  #varParts(segments: readonly string[], scope: Scope): { conds: string; value: string } | null {
    if (scope.reduce) {
      const [first, ...rest] = segments;
      if (first !== 'current' && first !== 'accumulator') return null; // the pair has no other own key
      const base = first === 'current' ? scope.reduce.current : scope.reduce.accumulator;
      return this.#pathConds(base, true, rest);
    }
    const { base, nullable, rest } = this.#cachedBase(segments, scope, false);
    return this.#pathConds(base, nullable, rest);
  }

  /**
   * A `var` node with a constant default, split into "found" condition, value
   * variable and default value, so that an operation on it can be generated
   * as `found ? op(value) : <op(default) computed now>` with no merge of types.
   */
  #staticRead(node: Node, scope: Scope): { conds: string; value: string; fallback: unknown } | null {
    if (node.type !== 'var' || (node.fallback !== null && node.fallback.type !== 'literal')) return null;
    const fallback = node.fallback === null ? null : (node.fallback as { value: unknown }).value;
    if (fallback !== null && typeof fallback === 'object') return null;
    const parts = this.#varParts(node.path, scope);
    return parts === null ? { conds: 'false', value: 'vv', fallback } : { ...parts, fallback };
  }

  /**
   * Reads path prefixes that several reads of this scope share once, at scope
   * entry (reads are pure, so reading early is unobservable):
   * `context.page.path` and `context.page.search` read `context.page` once.
   */
  #prepareScope(root: Node, scope: Scope): void {
    if (scope.cache === undefined || scope.data === null || scope.reduce) return;
    const counts = new Map<string, number>();
    const note = (segments: readonly string[]) => {
      for (let l = 1; l <= segments.length; l++) {
        const key = segments.slice(0, l).join('\u0000');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    };
    const visit = (node: Node): void => {
      if (node.type === 'var') note(node.path);
      if (node.type === 'missing' || node.type === 'missing_some') {
        const keys = node.type === 'missing'
          ? this.#staticMissingKeys(node.args)
          : node.keys.type === 'literal' && Array.isArray(node.keys.value) ? this.#staticMissingKeys([node.keys]) : null;
        for (const k of keys ?? []) {
          const segments = String(k).split('.');
          if (k !== '' && !segments.some((x) => FORBIDDEN_SEGMENTS.has(x))) note(segments);
        }
      }
      for (const child of sameScopeChildren(node)) visit(child);
    };
    visit(root);
    const shared = [...counts].filter(([, n]) => n >= 2).map(([k]) => k.split('\u0000'));
    shared.sort((a, b) => a.length - b.length);
    for (const segments of shared) {
      const { base, nullable, rest } = this.#cachedBase(segments, scope, true);
      const t = this.#temp();
      const read = this.#path(base, nullable, rest, this.literal(undefined));
      this.#emit(`${t} = ${read.code};`);
      this.#markBase(t);
      scope.cache.set(segments.join('\u0000'), t);
    }
  }

  /** The longest cached prefix of `segments` (a proper prefix when `proper`). */
  #cachedBase(segments: readonly string[], scope: Scope, proper: boolean): { base: string; nullable: boolean; rest: readonly string[] } {
    for (let l = segments.length - (proper ? 1 : 0); l >= 1; l--) {
      const t = scope.cache?.get(segments.slice(0, l).join('\u0000'));
      if (t !== undefined) return { base: t, nullable: true, rest: segments.slice(l) };
    }
    return { base: scope.data as string, nullable: scope.nullable, rest: segments };
  }

  #var(segments: readonly string[], fallbackNode: Node | null, scope: Scope): Expr {
    let fallback = fallbackNode ? this.value(fallbackNode, scope) : this.literal(null);
    // json-logic-js evaluates the default first; keep that when it has effects.
    // A pure default is only evaluated when the path is not found.
    if (!fallback.pure) fallback = this.#materialize(fallback);
    if (scope.reduce && segments.length === 1 && segments[0] === 'accumulator' && scope.reduce.accumulatorKind === 'number') {
      return { code: scope.reduce.accumulator, kind: 'number', atom: true, pure: true };
    }
    const parts = this.#varParts(segments, scope);
    if (parts === null) return fallback;
    if (parts.conds === 'true') return { code: parts.value, kind: 'any', atom: true, pure: true };
    return { code: `(${parts.conds} ? ${parts.value} : ${fallback.code})`, kind: 'any', atom: false, pure: fallback.pure };
  }

  #if(branches: readonly { test: Node; then: Node }[], otherwise: Node | null, scope: Scope): Expr {
    const parts = branches.map((b) => ({
      test: this.#capture(() => this.test(b.test, scope)),
      then: this.#capture(() => this.value(b.then, scope)),
    }));
    const last = this.#capture(() => (otherwise ? this.value(otherwise, scope) : this.literal(null)));
    const kind = union([...parts.map((p) => p.then.result.kind), last.result.kind]);
    const pure = parts.every((p) => p.then.result.pure) && last.result.pure;
    const simple = parts.length <= MAX_INLINE_CHAIN && last.stmts.length === 0 &&
      parts.every((p) => p.test.stmts.length === 0 && p.then.stmts.length === 0);
    if (simple) {
      let code = last.result.code;
      for (let i = parts.length - 1; i >= 0; i--) {
        const p = parts[i]!;
        code = `(${p.test.result} ? ${p.then.result.code} : ${code})`;
      }
      return { code, kind, atom: false, pure };
    }
    const r = this.#temp();
    const label = `${r}_`;
    const lines = [`${label}: {`];
    for (const p of parts) {
      lines.push(
        ...this.#indent(p.test.stmts),
        `  if (${p.test.result}) {`,
        ...this.#indent(this.#indent([...p.then.stmts, `${r} = ${p.then.result.code};`, `break ${label};`])),
        '  }',
      );
    }
    lines.push(...this.#indent([...last.stmts, `${r} = ${last.result.code};`]), '}');
    this.#emit(...lines);
    return { code: r, kind, atom: true, pure: true };
  }

  #logic(op: 'and' | 'or', args: readonly Node[], scope: Scope): Expr {
    const parts = args.map((a) => this.#capture(() => this.value(a, scope)));
    const kind = union(parts.map((p) => p.result.kind));
    const pure = parts.every((p) => p.result.pure);
    if (parts.length <= MAX_INLINE_CHAIN && parts.every((p) => p.stmts.length === 0)) {
      if (parts.slice(0, -1).every((p) => PRIMITIVE_KINDS.has(p.result.kind))) {
        // Only the operands that are tested matter: without arrays, JSON-Logic
        // truthiness is JavaScript's, so && and || are exact.
        return { code: `(${parts.map((p) => p.result.code).join(op === 'and' ? ' && ' : ' || ')})`, kind, atom: false, pure };
      }
      const t = this.#temp();
      let code = parts[parts.length - 1]!.result.code;
      for (let i = parts.length - 2; i >= 0; i--) {
        const p = parts[i]!.result;
        const cond = this.#truthyOf({ code: `(${t} = ${p.code})`, kind: p.kind, atom: false, pure: p.pure });
        code = op === 'and' ? `(${cond} ? ${code} : ${t})` : `(${cond} ? ${t} : ${code})`;
      }
      return { code, kind, atom: false, pure };
    }
    const r = this.#temp();
    const label = `${r}_`;
    const lines = [`${label}: {`];
    parts.forEach((p, i) => {
      lines.push(...this.#indent(p.stmts), `  ${r} = ${p.result.code};`);
      if (i + 1 < parts.length) {
        const cond = this.#truthyOf({ code: r, kind: p.result.kind, atom: true, pure: true });
        lines.push(`  if (${op === 'and' ? `!${cond}` : cond}) break ${label};`);
      }
    });
    lines.push('}');
    this.#emit(...lines);
    return { code: r, kind, atom: true, pure: true };
  }

  #compare(op: string, nodes: readonly Node[], scope: Scope): Expr {
    if (nodes.length === 2) {
      // var OP literal (either side): compare only when found, fold the default case now.
      for (const side of [0, 1]) {
        const other = nodes[1 - side]!;
        if (other.type !== 'literal' || (other.value !== null && typeof other.value === 'object')) continue;
        const read = this.#staticRead(nodes[side]!, scope);
        if (read === null) continue;
        const lit = this.literal(other.value).code;
        const found = side === 0 ? `${read.value} ${op} ${lit}` : `${lit} ${op} ${read.value}`;
        const absent = side === 0 ? COMPARE[op]!(read.fallback, other.value) : COMPARE[op]!(other.value, read.fallback);
        return { code: `(${read.conds} ? ${found} : ${absent})`, kind: 'boolean', atom: false, pure: true };
      }
    }
    const args = this.#args(nodes, scope);
    const pure = args.every((a) => a.pure);
    const [a, b, c] = args as [Expr, Expr, Expr | undefined];
    if (c === undefined) {
      return { code: `(${a.code} ${op} ${b.code})`, kind: 'boolean', atom: false, pure };
    }
    // Between: all three operands are evaluated first (json-logic-js maps them
    // before calling), and an undefined third operand means a plain comparison.
    const sideEffects = !a.pure || !b.pure || !c.pure;
    const ta = sideEffects ? this.#temp() : null;
    const tb = this.#temp();
    const ea = ta ? `(${ta} = ${a.code})` : a.code;
    const eb = `(${tb} = ${b.code})`;
    if (c.kind !== 'any' && !sideEffects) {
      return { code: `(${ea} ${op} ${eb} && ${tb} ${op} ${c.code})`, kind: 'boolean', atom: false, pure };
    }
    const tc = this.#temp();
    const first = ta ?? this.#temp();
    return {
      code: `(${first} = ${a.code}, ${eb}, ${tc} = ${c.code}, ${tc} === undefined ? ${first} ${op} ${tb} : ${first} ${op} ${tb} && ${tb} ${op} ${tc})`,
      kind: 'boolean',
      atom: false,
      pure,
    };
  }

  #arith(op: string, nodes: readonly Node[], scope: Scope): Expr {
    const args = this.#args(nodes, scope);
    const pure = args.every((a) => a.pure);
    const num = (code: string): Expr => ({ code, kind: 'number', atom: false, pure });
    // A var with a constant default becomes `found ? toNumber(value) : <constant>`.
    const reads = nodes.map((n) => (op === '+' || op === '*' ? this.#staticRead(n, scope) : null));
    const numeric = (a: Expr, i: number): string => {
      const read = reads[i];
      if (read) {
        const absent = runtime.toNumber(read.fallback);
        return `(${read.conds} ? ${this.#toNumber(read.value)} : ${numberLiteral(absent)})`;
      }
      return this.#toNumber(a.code);
    };
    switch (op) {
      case '+':
        // json-logic-js: [].reduce((a, b) => parseFloat(a) + parseFloat(b), 0)
        if (args.length === 0) return this.literal(0);
        return num(`(0 + ${args.map((a, i) => (a.kind === 'number' ? a.code : numeric(a, i))).join(' + ')})`);
      case '*':
        // A single operand is returned as it is (reduce without initial value).
        if (args.length === 1) return args[0]!;
        {
          // json-logic-js parseFloats the running product too (so -0 becomes 0 between steps).
          const operand = (a: Expr) => (a.atom && a.kind === 'number' && /^[0-9]/.test(a.code) ? a.code : numeric(a, args.indexOf(a)));
          let code = operand(args[0]!);
          for (let i = 1; i < args.length; i++) {
            code = `${i > 1 ? this.#toNumber(code) : code} * ${operand(args[i]!)}`;
          }
          return num(`(${code})`);
        }
      case '-': {
        const [a, b] = args as [Expr, Expr | undefined];
        if (b === undefined) return num(`(-${a.code})`);
        if (b.kind !== 'any') return num(`(${a.code} - ${b.code})`);
        const ta = this.#temp();
        const tb = this.#temp();
        return num(`(${ta} = ${a.code}, (${tb} = ${b.code}) === undefined ? -${ta} : ${ta} - ${tb})`);
      }
      case '/':
      case '%':
        return num(`(${args[0]!.code} ${op} ${args[1]!.code})`);
      case 'min':
      case 'max':
        return num(`${op}(${args.map((a) => a.code).join(', ')})`);
      default:
        throw new Error(`internal: arithmetic ${op}`);
    }
  }

  /** Inline `toText` (how Array.prototype.join converts one element). */
  #toText(code: string): string {
    const t = this.#temp();
    return `((${t} = ${code}) == null ? "" : typeof ${t} === "string" ? ${t} : str(${t}))`;
  }

  /** Inline `toNumber` (parseFloat that also maps -0 to 0, as json-logic-js's `+`/`*`). */
  #toNumber(code: string): string {
    const t = this.#temp();
    return `(typeof (${t} = ${code}) === "number" ? (${t} === 0 ? 0 : ${t}) : parseFloat(${t}))`;
  }

  #call(name: string, nodes: readonly Node[], at: string, scope: Scope): Expr {
    const op = this.#ops.get(name) as Operation;
    // Specialisations of the json-logic-js operations.
    if (name === 'in' && op.fn === runtime.inOp) {
      const haystack = nodes[1]!;
      if (haystack.type === 'literal' && Array.isArray(haystack.value) && haystack.value.length <= MAX_INLINE_IN &&
          haystack.value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v) && !Number.isNaN(v))) {
        const read = this.#staticRead(nodes[0]!, scope);
        if (read !== null && haystack.value.length > 0) {
          const checks = haystack.value.map((v) => `${read.value} === ${this.literal(v).code}`);
          return { code: `(${read.conds} ? (${checks.join(' || ')}) : ${haystack.value.includes(read.fallback as never)})`, kind: 'boolean', atom: false, pure: true };
        }
        const needle = this.value(nodes[0]!, scope);
        if (haystack.value.length === 0) return { code: needle.pure ? 'false' : `(${needle.code}, false)`, kind: 'boolean', atom: false, pure: needle.pure };
        const n = needle.atom ? needle.code : this.#temp();
        const checks = haystack.value.map((v, i) =>
          `${i === 0 && !needle.atom ? `(${n} = ${needle.code})` : n} === ${this.literal(v).code}`);
        return { code: `(${checks.join(' || ')})`, kind: 'boolean', atom: false, pure: needle.pure };
      }
      if (haystack.type === 'literal' && Array.isArray(haystack.value)) {
        const needle = this.value(nodes[0]!, scope);
        const list = this.#constant(Object.freeze(haystack.value.slice()));
        return { code: `arrayHas(${list}, ${needle.code})`, kind: 'boolean', atom: false, pure: needle.pure };
      }
      const needleNode = nodes[0]!;
      const read = this.#staticRead(haystack, scope);
      if (read !== null && needleNode.type === 'literal' && (needleNode.value === null || typeof needleNode.value !== 'object')) {
        const n = this.literal(needleNode.value).code;
        const h = read.value;
        return {
          code: `(${read.conds} ? (isArray(${h}) ? arrayHas(${h}, ${n}) : typeof ${h} === "string" && stringHas(${h}, ${n})) : ${runtime.inOp(needleNode.value, read.fallback)})`,
          kind: 'boolean',
          atom: false,
          pure: true,
        };
      }
      // Dynamic haystack: the body of inOp, inlined so each rule keeps its own type feedback.
      const [needle, hay] = this.#args(nodes, scope) as [Expr, Expr];
      const n = needle.atom ? needle.code : this.#temp();
      const h = this.#temp();
      const first = needle.atom ? '' : `${n} = ${needle.code}, `;
      return {
        code: `(${first}${h} = ${hay.code}, isArray(${h}) ? arrayHas(${h}, ${n}) : typeof ${h} === "string" && stringHas(${h}, ${n}))`,
        kind: 'boolean',
        atom: false,
        pure: needle.pure && hay.pure,
      };
    }
    if (name === 'cat' && op.fn === runtime.cat) {
      const args = this.#args(nodes, scope);
      if (args.length === 0) return this.literal('');
      const parts = args.map((a) =>
        a.kind === 'string' || a.kind === 'number' || a.kind === 'boolean' ? a.code : a.kind === 'null' ? '""' : this.#toText(a.code));
      return { code: `("" + ${parts.join(' + ')})`, kind: 'string', atom: false, pure: args.every((a) => a.pure) };
    }

    if (name === 'substr' && op.fn === runtime.substr) {
      const end = nodes[2];
      if (nodes[1]!.type === 'literal' && typeof (nodes[1] as { value: unknown }).value === 'number' &&
          (end === undefined || (end.type === 'literal' && typeof end.value === 'number' && end.value >= 0))) {
        // Non-negative or absent length: String.prototype.substr directly.
        const [source, start, length] = this.#args(nodes, scope) as [Expr, Expr, Expr | undefined];
        const text = source.kind === 'string' ? source.code : `str(${source.code})`;
        return {
          code: `${text}.substr(${start.code}${length ? `, ${length.code}` : ''})`,
          kind: 'string',
          atom: false,
          pure: source.pure,
        };
      }
    }
    const args = this.#args(nodes, scope);
    let fn: OperationFn = op.fn;
    if (op.prepare) {
      const constant = nodes.map((n) => n.type === 'literal');
      const values = nodes.map((n) => (n.type === 'literal' ? n.value : undefined));
      let prepared: OperationFn | undefined;
      try {
        prepared = op.prepare(values, constant);
      } catch (error) {
        throw new JsonLogicCompileError('JSONLOGIC_INVALID_ARGUMENT', at, (error as Error).message, name);
      }
      if (prepared) fn = prepared;
    }
    const f = this.#constant(fn, 'f');
    const kind: Kind = op.returns;
    return { code: `${f}(${args.map((a) => a.code).join(', ')})`, kind, atom: false, pure: op.pure && args.every((a) => a.pure) };
  }

  /** Static keys of `missing` (strings/numbers known at compile time), or null. */
  #staticMissingKeys(nodes: readonly Node[]): (string | number)[] | null {
    if (!nodes.every((n) => n.type === 'literal')) return null;
    const values = nodes.map((n) => (n as { value: unknown }).value);
    const keys = Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
    if (!keys.every((k) => typeof k === 'string' || typeof k === 'number')) return null;
    return keys as (string | number)[];
  }

  /** Condition: the static key is missing (its `var` is null or ""). */
  #isMissing(key: string | number, scope: Scope): string {
    if (key !== '') {
      const segments = String(key).split('.');
      if (!segments.some((x) => FORBIDDEN_SEGMENTS.has(x))) {
        const parts = this.#varParts(segments, scope);
        if (parts === null) return 'true';
        return `(${parts.conds} ? (${parts.value} === null || ${parts.value} === "") : true)`;
      }
    }
    const v = this.#temp();
    let read: Expr;
    if (key === '') {
      read = this.#scopeDataOrPair(scope);
    } else {
      const segments = String(key).split('.');
      read = segments.some((s) => s === '__proto__' || s === 'constructor' || s === 'prototype')
        ? this.literal(null)
        : this.#var(segments, null, scope);
    }
    return `((${v} = ${read.code}) === null || ${v} === "")`;
  }

  #scopeDataOrPair(scope: Scope): Expr {
    if (scope.data === null) return this.literal(false); // the pair object is never null or ""
    return this.#scopeData(scope);
  }

  #missing(nodes: readonly Node[], scope: Scope): Expr {
    const keys = this.#staticMissingKeys(nodes);
    if (keys !== null) {
      if (keys.length === 0) return { code: '[]', kind: 'array', atom: false, pure: true };
      const m = this.#temp();
      const pushes = keys.map((k) => `(${this.#isMissing(k, scope)} && ${m}.push(${this.literal(k).code}))`);
      return { code: `(${m} = [], ${pushes.join(', ')}, ${m})`, kind: 'array', atom: false, pure: true };
    }
    const args = this.#args(nodes, scope);
    const data = this.#scopeData(scope);
    return { code: `missing(${data.code}, [${args.map((a) => a.code).join(', ')}])`, kind: 'array', atom: false, pure: args.every((a) => a.pure) };
  }

  /** The kind of a reduce body's value, assuming `accumulator` has `accumulatorKind`. */
  #kindOf(node: Node, accumulatorKind: Kind): Kind {
    switch (node.type) {
      case 'literal':
        return this.literal(node.value).kind;
      case 'arith':
        return node.op === '*' && node.args.length === 1 ? this.#kindOf(node.args[0]!, accumulatorKind) : 'number';
      case 'compare':
      case 'not':
        return 'boolean';
      case 'iterate':
        return node.op === 'map' || node.op === 'filter' ? 'array' : 'boolean';
      case 'missing':
      case 'missing_some':
        return 'array';
      case 'call':
        return this.#ops.get(node.op)?.returns ?? 'any';
      case 'and':
      case 'or':
        return union(node.args.map((a) => this.#kindOf(a, accumulatorKind)));
      case 'if':
        return union([
          ...node.branches.map((b) => this.#kindOf(b.then, accumulatorKind)),
          node.otherwise ? this.#kindOf(node.otherwise, accumulatorKind) : 'null',
        ]);
      case 'var':
        return node.path.length === 1 && node.path[0] === 'accumulator' ? accumulatorKind : 'any';
      default:
        return 'any';
    }
  }

  // ---------------------------------------------------------------- loops

  #iterate(op: string, sourceNode: Node, bodyNode: Node, scope: Scope): Expr {
    const source = this.#materialize(this.value(sourceNode, scope), true);
    const r = this.#temp();
    const i = this.#temp();
    const n = this.#temp();
    const item = this.#temp();
    const inner: Scope = { data: item, nullable: true, cache: new Map() };
    this.#baseable.add(item);
    const loop = (bodyLines: string[]): string[] => [
      `for (${i} = 0, ${n} = ${source.code}.length; ${i} < ${n}; ${i}++) {`,
      `  ${item} = ${source.code}[${i}];`,
      `  \u0001BASE ${item}`,
      ...this.#indent(bodyLines),
      '}',
    ];
    let lines: string[];
    let kind: Kind;
    if (op === 'map') {
      const body = this.#captureLoop(() => { this.#prepareScope(bodyNode, inner); return this.value(bodyNode, inner); });
      lines = [`${r} = [];`, `if (isArray(${source.code})) {`, ...this.#indent(loop([...body.stmts, `${r}.push(${body.result.code});`])), '}'];
      kind = 'array';
    } else if (op === 'filter') {
      const body = this.#captureLoop(() => { this.#prepareScope(bodyNode, inner); return this.test(bodyNode, inner); });
      lines = [`${r} = [];`, `if (isArray(${source.code})) {`, ...this.#indent(loop([...body.stmts, `if (${body.result}) ${r}.push(${item});`])), '}'];
      kind = 'array';
    } else {
      const body = this.#captureLoop(() => { this.#prepareScope(bodyNode, inner); return this.test(bodyNode, inner); });
      // all: empty → false; some: → false; none: → true.
      const init = op === 'none' ? 'true' : 'false';
      const guard = op === 'all' ? `isArray(${source.code}) && ${source.code}.length !== 0` : `isArray(${source.code})`;
      const start = op === 'all' ? [`${r} = true;`] : [];
      const exit = op === 'all'
        ? `if (!${body.result}) { ${r} = false; break; }`
        : `if (${body.result}) { ${r} = ${op === 'some' ? 'true' : 'false'}; break; }`;
      lines = [`${r} = ${init};`, `if (${guard}) {`, ...this.#indent([...start, ...loop([...body.stmts, exit])]), '}'];
      kind = 'boolean';
    }
    this.#emit(...lines);
    return { code: r, kind, atom: true, pure: true };
  }

  #reduce(sourceNode: Node, bodyNode: Node, initialNode: Node | null, scope: Scope): Expr {
    const [sourceExpr, initialExpr] = this.#args(initialNode ? [sourceNode, initialNode] : [sourceNode], scope);
    const source = this.#materialize(sourceExpr!, true);
    const acc = this.#temp();
    this.#emit(`${acc} = ${initialExpr ? initialExpr.code : 'null'};`);
    const i = this.#temp();
    const n = this.#temp();
    const current = this.#temp();
    const pairNeeded = needsPair(bodyNode);
    const pair = pairNeeded ? this.#temp() : null;
    // When the initial value is a number and the body always yields a number,
    // the accumulator is a number throughout: reads of it need no checks.
    let accumulatorKind: Kind = 'any';
    if (initialExpr?.kind === 'number' && this.#kindOf(bodyNode, 'number') === 'number') accumulatorKind = 'number';
    const inner: Scope = { data: pair, nullable: false, reduce: { current, accumulator: acc, accumulatorKind } };
    const body = this.#captureLoop(() => this.value(bodyNode, inner));
    this.#emit(
      `if (isArray(${source.code})) {`,
      `  for (${i} = 0, ${n} = ${source.code}.length; ${i} < ${n}; ${i}++) {`,
      `    ${current} = ${source.code}[${i}];`,
      ...(pair ? [`    ${pair} = { current: ${current}, accumulator: ${acc} };`] : []),
      ...this.#indent(this.#indent(body.stmts)),
      `    ${acc} = ${body.result.code};`,
      '  }',
      '}',
    );
    return { code: acc, kind: 'any', atom: true, pure: true };
  }
}

/** Whether a reduce body needs the `{current, accumulator}` object itself. */
function needsPair(node: Node): boolean {
  switch (node.type) {
    case 'data':
    case 'dynamic_var':
    case 'missing_some':
      return true;
    case 'missing': {
      const literal = node.args.every((n) => n.type === 'literal');
      if (!literal) return true;
      const values = node.args.map((n) => (n as { value: unknown }).value);
      const keys = Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
      return !keys.every((k) => typeof k === 'string' || typeof k === 'number');
    }
    case 'iterate':
      return needsPair(node.source);
    case 'reduce':
      return needsPair(node.source) || (node.initial !== null && needsPair(node.initial));
    default:
      break;
  }
  const children: Node[] = [];
  switch (node.type) {
    case 'array':
      children.push(...node.items);
      break;
    case 'var':
      if (node.fallback) children.push(node.fallback);
      break;
    case 'if':
      for (const b of node.branches) children.push(b.test, b.then);
      if (node.otherwise) children.push(node.otherwise);
      break;
    case 'and':
    case 'or':
    case 'compare':
    case 'arith':
    case 'call':
      children.push(...node.args);
      break;
    case 'not':
      children.push(node.arg);
      break;
    default:
      // DSL forms (JSON-Logic never puts them in a reduce body).
      children.push(...sameScopeChildren(node));
      break;
  }
  return children.some(needsPair);
}

interface OutputBlock {
  readonly root: string;
  readonly label: string;
  /** Static parent path (segments joined by NUL) → variable holding the object this mapping made there. */
  readonly known: Map<string, string>;
  /** Paths (and parents) that statements so far may have assigned. */
  readonly assigned: Set<string>;
  /** Paths whose known objects this block may have replaced (applied to the enclosing block after it). */
  readonly invalidated: string[];
  /** A merge ran: any key of the root may exist. */
  merged: boolean;
}

/** Forgets the known objects at `key` and below (`''`: all but the root). */
function invalidate(block: OutputBlock, key: string): void {
  block.invalidated.push(key);
  for (const k of [...block.known.keys()]) {
    if (k === '') continue;
    if (key === '' || k === key || k.startsWith(`${key}\u0000`)) block.known.delete(k);
  }
}

/** A simple output as a tree: key → subtree, or the `set` statement assigning that path. */
type OutputTree = Map<string, OutputTree | Stmt>;

/**
 * The tree of an output body that only binds locals and assigns distinct string paths,
 * none a prefix of another (so no statement sees another's effect); null otherwise.
 */
function simpleOutput(body: readonly Stmt[]): OutputTree | null {
  const root: OutputTree = new Map();
  for (const stmt of body) {
    if (stmt.type === 'bind') continue;
    if (stmt.type !== 'set' || stmt.path.length === 0 || stmt.path.some((s) => typeof s !== 'string')) return null;
    let node = root;
    const path = stmt.path as readonly string[];
    for (let i = 0; i < path.length - 1; i++) {
      const next = node.get(path[i]!);
      if (next === undefined) {
        const child: OutputTree = new Map();
        node.set(path[i]!, child);
        node = child;
      } else if (next instanceof Map) node = next;
      else return null;
    }
    if (node.has(path[path.length - 1]!)) return null;
    node.set(path[path.length - 1]!, stmt);
  }
  return root;
}

/** Generates and instantiates the function for an IR tree. */
export function generate(root: Node, operations: Operations, options: GenerateOptions = {}): GeneratedRule {
  return new Generator(operations, options).generate(root);
}

/** Whether the IR tree has no impure operation anywhere (bodies included). */
export function isPureTree(root: Node, operations: Operations): boolean {
  return new Generator(operations).isPure(root);
}
