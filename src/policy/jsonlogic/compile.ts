/**
 * `compileRule`: JSON-Logic → IR (lower.ts) → constant folding → JavaScript
 * (codegen.ts), cached per rule in a bounded LRU.
 */
import { generate, type GenerateOptions } from './codegen.js';
import { JsonLogicCompileError } from './errors.js';
import { sameScopeChildren, type Node, type Stmt } from './ir.js';
import { lowerJsonLogic, type LowerLimits } from './lower.js';
import { createOperations, type Operations } from './operations.js';

/** A compiled rule: call it with the data. `source` is the generated JavaScript, for debugging. */
export interface CompiledRule {
  (data?: unknown): unknown;
  readonly source: string;
}

export interface CompileOptions {
  /**
   * The operations a rule may call. Each registry has its own cache.
   * @default a private registry from `createOperations()` (json-logic-js and domain operations, `log` drops values)
   */
  operations?: Operations;
  /**
   * Deepest nesting of arrays and objects in a rule.
   * @default 256
   */
  maxDepth?: number;
  /**
   * Most values (operators, arguments, literals) in one rule.
   * @default 10000
   */
  maxNodes?: number;
  /**
   * Check `Object.hasOwn` on every property read. By default only keys that a
   * built-in prototype has (`toString`, `length` …), or that a polluted
   * built-in prototype has gained, are checked that way; the difference only
   * shows with class instances in the data whose prototypes define data-like
   * properties.
   * @default false
   */
  strictOwnProperties?: boolean;
}

export interface CompilerOptions extends CompileOptions {
  /**
   * Compiled rules kept per compiler (least recently used are dropped).
   * @default 1000
   */
  cacheSize?: number;
}

export interface Compiler {
  /** Compiles (or returns the cached compilation of) a JSON-Logic rule. */
  compile(rule: unknown): CompiledRule;
  readonly operations: Operations;
}

export const DEFAULT_MAX_DEPTH = 256;
export const DEFAULT_MAX_NODES = 10_000;
export const DEFAULT_CACHE_SIZE = 1000;

/**
 * A compiler bound to one operations registry, with its own LRU cache.
 * @example
 * const compiler = createCompiler({ operations: createOperations() });
 * const isPurchase = compiler.compile({ '==': [{ var: 'event' }, 'Order Completed'] });
 * isPurchase(event); // → true | false
 */
export function createCompiler(options: CompilerOptions = {}): Compiler {
  const operations = options.operations ?? createOperations();
  const limits: LowerLimits = {
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxNodes: options.maxNodes ?? DEFAULT_MAX_NODES,
  };
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  const strict = options.strictOwnProperties ?? false;
  const cache = new Map<string, CompiledRule>();
  return {
    operations,
    compile(rule: unknown): CompiledRule {
      const key = `${operations.version}\u0000${cacheKey(rule, limits)}`;
      const hit = cache.get(key);
      if (hit !== undefined) {
        // Map keeps insertion order: re-inserting marks it most recently used.
        cache.delete(key);
        cache.set(key, hit);
        return hit;
      }
      const compiled = compileUncached(rule, operations, limits, strict);
      if (cacheSize > 0) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
        cache.set(key, compiled);
      }
      return compiled;
    },
  };
}

const compilers = new WeakMap<Operations, Map<string, Compiler>>();
let defaultOperations: Operations | undefined;

/**
 * Compiles a JSON-Logic rule to a JavaScript function, with json-logic-js
 * semantics. Throws {@link JsonLogicCompileError} for unknown operators, wrong
 * arity, non-JSON values and rules over the size limits.
 * @example
 * const rule = compileRule({ in: ['C0004', { var: 'context.consentManagement.allowedConsentIds' }] });
 * rule(event); // → true | false
 */
export function compileRule(rule: unknown, options: CompileOptions = {}): CompiledRule {
  const operations = options.operations ?? (defaultOperations ??= createOperations());
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
  let byLimits = compilers.get(operations);
  if (byLimits === undefined) {
    byLimits = new Map();
    compilers.set(operations, byLimits);
  }
  const strictOwnProperties = options.strictOwnProperties ?? false;
  const limitsKey = `${maxDepth}/${maxNodes}/${strictOwnProperties}`;
  let compiler = byLimits.get(limitsKey);
  if (compiler === undefined) {
    compiler = createCompiler({ operations, maxDepth, maxNodes, strictOwnProperties });
    byLimits.set(limitsKey, compiler);
  }
  return compiler.compile(rule);
}

function compileUncached(rule: unknown, operations: Operations, limits: LowerLimits, strictOwnProperties: boolean): CompiledRule {
  return compileIr(lowerJsonLogic(rule, operations, limits), operations, { strictOwnProperties });
}

/**
 * IR (from any front end) → constant folding → generated function, with the same
 * shape as a compiled JSON-Logic rule. The mapping DSL compiles through here.
 */
export function compileIr(root: Node, operations: Operations, options: GenerateOptions = {}, properties: PropertyDescriptorMap = {}): CompiledRule {
  const ir = foldConstants(root, operations);
  const { source, fn, apply } = generate(ir, operations, options);
  // The generated function itself, not a wrapper: a shared wrapper would give
  // every rule one call site, which turns megamorphic as soon as there are several.
  // `properties` (non-enumerable) are set before it is frozen; in mapping mode it
  // has `apply` too (see `GeneratedRule`).
  const compiled = fn as CompiledRule;
  Object.defineProperties(compiled, { source: { value: source }, ...(apply ? { apply: { value: apply } } : {}), ...properties });
  return Object.freeze(compiled);
}

/**
 * Canonical text of a rule for the cache: object keys sorted, non-JSON numbers
 * spelled out (so NaN and null differ), depth- and size-limited so a cyclic,
 * absurdly deep or exponentially shared rule fails with a coded error.
 */
function cacheKey(value: unknown, limits: LowerLimits): string {
  const parts: string[] = [];
  let nodes = 0;
  const walk = (v: unknown, depth: number): void => {
    if (depth > limits.maxDepth + 2) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_DEPTH', '', `deeper than ${limits.maxDepth}`);
    }
    // A rule that shares sub-objects can be exponentially larger than its memory.
    if (++nodes > limits.maxNodes * 2) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_NODES', '', `more than ${limits.maxNodes} values`);
    }
    if (v === null) parts.push('null');
    else if (typeof v === 'string') parts.push(JSON.stringify(v));
    else if (typeof v === 'number') parts.push(Object.is(v, -0) ? '-0' : String(v));
    else if (typeof v === 'boolean') parts.push(v ? 'true' : 'false');
    else if (Array.isArray(v)) {
      parts.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i) parts.push(',');
        walk(v[i], depth + 1);
      }
      parts.push(']');
    } else if (typeof v === 'object') {
      parts.push('{');
      const keys = Object.keys(v as object).sort();
      keys.forEach((k, i) => {
        if (i) parts.push(',');
        parts.push(JSON.stringify(k), ':');
        walk((v as Record<string, unknown>)[k], depth + 1);
      });
      parts.push('}');
    } else {
      // Not JSON: lowering rejects it with its location; keep keys distinct meanwhile.
      parts.push(`<${typeof v}>`);
    }
  };
  walk(value, 0);
  return parts.join('');
}

/**
 * Evaluates, at compile time, every subtree that depends on no data and calls
 * only pure operations, when its value is a primitive or an array of JSON
 * values (emitted fresh on each evaluation, so folding is invisible).
 */
function foldConstants(root: Node, operations: Operations): Node {
  const fold = (node: Node): Node => {
    const folded = mapChildren(node, fold);
    if (!foldable(folded)) return folded;
    let value: unknown;
    try {
      value = generate(folded, operations).fn(undefined);
    } catch (error) {
      if (error instanceof JsonLogicCompileError) throw error;
      return folded; // fails at run time, as json-logic-js would
    }
    return isFoldedValue(value, 0) ? { type: 'literal', value } : folded;
  };
  const foldable = (node: Node): boolean => {
    switch (node.type) {
      case 'literal':
      case 'data':
      case 'var':
      case 'dynamic_var':
      case 'missing':
      case 'missing_some':
      case 'local':
      case 'output':
      case 'let':
        return false;
      case 'call': {
        const op = operations.get(node.op);
        if (!op?.pure) return false;
        break;
      }
      default:
        break;
    }
    if (!sameScopeChildren(node).every((c) => c.type === 'literal')) return false;
    return isPureBodies(node);
  };
  const isPureBodies = (node: Node): boolean => {
    if (node.type === 'iterate' || node.type === 'reduce') return pureTree(node.body);
    return true;
  };
  const pureTree = (node: Node): boolean => {
    if (node.type === 'call' && !operations.get(node.op)?.pure) return false;
    if ((node.type === 'iterate' || node.type === 'reduce') && !pureTree(node.body)) return false;
    return sameScopeChildren(node).every(pureTree);
  };
  return fold(root);
}

function isFoldedValue(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return true;
  if (Array.isArray(value) && depth < 32) return value.every((v) => isFoldedValue(v, depth + 1));
  // Frozen objects are constants of the rule itself; anything else could be mutated by a caller.
  return value !== null && typeof value === 'object' && Object.isFrozen(value);
}

/** A copy of `node` with `fn` applied to every child node (bodies included). */
function mapChildren(node: Node, fn: (n: Node) => Node): Node {
  const opt = (n: Node | null) => (n === null ? null : fn(n));
  switch (node.type) {
    case 'literal':
    case 'data':
      return node;
    case 'array': {
      const items = node.items.map(fn);
      if (items.every((n) => n.type === 'literal')) {
        return { type: 'literal', value: items.map((n) => (n as { value: unknown }).value) };
      }
      return { ...node, items };
    }
    case 'var':
      return { ...node, fallback: opt(node.fallback) };
    case 'dynamic_var':
      return { ...node, path: fn(node.path), fallback: opt(node.fallback) };
    case 'if':
      return {
        ...node,
        branches: node.branches.map((b) => ({ test: fn(b.test), then: fn(b.then) })),
        otherwise: opt(node.otherwise),
      };
    case 'and':
    case 'or':
    case 'compare':
    case 'arith':
    case 'call':
    case 'missing':
      return { ...node, args: node.args.map(fn) } as Node;
    case 'not':
      return { ...node, arg: fn(node.arg) };
    case 'missing_some':
      return { ...node, need: fn(node.need), keys: fn(node.keys) };
    case 'iterate':
      return { ...node, source: fn(node.source), body: fn(node.body) };
    case 'reduce':
      return { ...node, source: fn(node.source), body: fn(node.body), initial: opt(node.initial) };
    case 'local':
      return node;
    case 'let':
      return { ...node, value: fn(node.value), body: fn(node.body) };
    case 'get':
      return { ...node, object: fn(node.object) };
    case 'index':
      return { ...node, object: fn(node.object), key: fn(node.key) };
    case 'object':
      return { ...node, entries: node.entries.map((e) => ('spread' in e ? { spread: fn(e.spread) } : { key: e.key, value: fn(e.value) })) };
    case 'concat':
      return { ...node, parts: node.parts.map(fn) };
    case 'coalesce':
      return { ...node, args: node.args.map(fn) };
    case 'output':
      return { ...node, body: mapStmts(node.body, fn) };
  }
}

function mapStmts(stmts: readonly Stmt[], fn: (n: Node) => Node): Stmt[] {
  return stmts.map((s): Stmt => {
    switch (s.type) {
      case 'set':
        return { ...s, value: fn(s.value) };
      case 'merge':
      case 'bind':
        return { ...s, value: fn(s.value) };
      case 'when':
        return { ...s, test: fn(s.test), then: mapStmts(s.then, fn), otherwise: mapStmts(s.otherwise, fn) };
      case 'drop':
        return s;
    }
  });
}
