/**
 * The pipeline, end to end: source → lexer → parser → checker → lowering to the
 * shared IR → the shared code generator → a cached function, and the run-time
 * limits around it (array steps, output values, bytes and depth).
 */
import { parse, parseExpression } from './parser.js';
import { Checker } from './checker.js';
import { Lowerer } from './lower.js';
import { createDslOperations, addDslOperations } from './stdlib.js';
import { DslCompileError, DslRuntimeError, type Diagnostic } from './errors.js';
import { compileIr, type CompiledRule } from '../src/policy/jsonlogic/compile.js';
import { JsonLogicCompileError } from '../src/policy/jsonlogic/errors.js';
import type { Node } from '../src/policy/jsonlogic/ir.js';
import { LimitError, type LimitKind } from '../src/policy/jsonlogic/runtime.js';
import type { Operations } from '../src/policy/jsonlogic/operations.js';

export interface MappingLimits {
  /**
   * Array steps (items visited by map, filter, sum …, nested ones multiplied) per event.
   * @default 100_000
   */
  maxSteps?: number;
  /**
   * Values (objects, arrays, scalars) in one output.
   * @default 10_000
   */
  maxOutputNodes?: number;
  /**
   * Approximate JSON size of one output, in bytes.
   * @default 262_144
   */
  maxOutputBytes?: number;
  /**
   * Deepest nesting of one output.
   * @default 64
   */
  maxOutputDepth?: number;
}

export interface CompileMappingOptions extends MappingLimits {
  /** Name used in messages (a file name). @default 'mapping' */
  file?: string;
  /** Report warnings as errors. @default false */
  strict?: boolean;
  /**
   * Check `Object.hasOwn` on every read, for events holding class instances (router
   * events are plain JSON, where only a polluted built-in prototype could lend a
   * property, and that is always checked).
   * @default false
   */
  strictOwnProperties?: boolean;
}

export interface MappingResult {
  /** The payload for the destination, or null when the mapping dropped the event. */
  readonly output: Record<string, unknown> | null;
  /** Approximate JSON size of `output`. */
  readonly bytes: number;
}

/** A compiled mapping: call it with an event to get the payload (or null: dropped). */
export interface CompiledMapping {
  (event: unknown): Record<string, unknown> | null;
  /** Like calling it, with the output's size. Throws {@link DslRuntimeError} over a limit. */
  apply(event: unknown): MappingResult;
  /** The generated JavaScript, for debugging. */
  readonly source: string;
  readonly warnings: readonly Diagnostic[];
}

export const DEFAULT_LIMITS: Required<MappingLimits> = {
  maxSteps: 100_000,
  maxOutputNodes: 10_000,
  maxOutputBytes: 262_144,
  maxOutputDepth: 64,
};

/** Statically, more IR nodes than this is refused (DSL_T110). */
const MAX_IR_NODES = 50_000;
const CACHE_SIZE = 256;

let sharedOps: Operations | undefined;
const ops = (): Operations => (sharedOps ??= createDslOperations());
const cache = new Map<string, CompiledMapping>();

/** Every diagnostic for `source`, without compiling. */
export function checkMapping(source: string): { errors: Diagnostic[]; warnings: Diagnostic[] } {
  const { ast, errors } = parse(source);
  const checked = new Checker(source, ops()).mapping(ast);
  return { errors: [...errors, ...checked.errors], warnings: checked.warnings };
}

/**
 * Compiles a mapping. Throws {@link DslCompileError} with every error found.
 * Compilations are cached by source and limits.
 * @example
 * const toGa4 = compileMapping('on "Order Completed" { name = "purchase"; value = event.properties.revenue }');
 * toGa4(event); // → { name: 'purchase', value: 42 }
 */
export function compileMapping(source: string, options: CompileMappingOptions = {}): CompiledMapping {
  if (typeof source !== 'string') throw new TypeError('a mapping is DSL source text');
  const limits: Required<MappingLimits> = {
    maxSteps: options.maxSteps ?? DEFAULT_LIMITS.maxSteps,
    maxOutputNodes: options.maxOutputNodes ?? DEFAULT_LIMITS.maxOutputNodes,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_LIMITS.maxOutputBytes,
    maxOutputDepth: options.maxOutputDepth ?? DEFAULT_LIMITS.maxOutputDepth,
  };
  const key = `${limits.maxSteps}/${limits.maxOutputNodes}/${limits.maxOutputBytes}/${limits.maxOutputDepth}/${options.strict ? 1 : 0}/${options.strictOwnProperties ? 1 : 0}/${options.file ?? ''}\u0000${source}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const { ast, errors } = parse(source);
  const checked = new Checker(source, ops()).mapping(ast);
  const all = [...errors, ...checked.errors, ...(options.strict ? checked.warnings : [])];
  if (all.length) throw new DslCompileError(sortDiagnostics(all), checked.warnings, options.file);
  const ir = new Lowerer(ops()).mapping(ast);
  const warnings = { warnings: { value: Object.freeze([...checked.warnings]) } };
  const compiled = generateChecked(ir, source, options.file, ops(), options.strictOwnProperties ?? false, limits, warnings) as unknown as CompiledMapping;
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, compiled);
  return compiled;
}

/**
 * Compiles a DSL condition (`event.properties.total > 100 and event.context.gpc != true`)
 * to the same shape as `compiler.compile(jsonLogicRule)`: a function of the event
 * with `.source`. Pass a policy runtime's `operations` to compile against it.
 */
export function compileCondition(source: string, options: { operations?: Operations; maxSteps?: number; file?: string } = {}): CompiledRule {
  const registry = options.operations ? addDslOperations(options.operations) : ops();
  const { ast, errors } = parseExpression(source);
  const checker = new Checker(source, registry);
  if (ast) checker.condition(ast);
  const all = [...errors, ...checker.errors];
  if (all.length || !ast) throw new DslCompileError(sortDiagnostics(all), checker.warnings, options.file ?? 'condition');
  const ir = new Lowerer(registry).condition(ast);
  const rule = generateChecked(ir, source, options.file ?? 'condition', registry);
  const maxSteps = options.maxSteps ?? DEFAULT_LIMITS.maxSteps;
  const fn = (data?: unknown) => {
    try {
      return (rule as unknown as (d: unknown, b: { steps: number }) => unknown)(data, { steps: maxSteps });
    } catch (err) {
      if (err instanceof LimitError) throw new DslRuntimeError('DSL_R103', `more than ${maxSteps} array steps`);
      throw err;
    }
  };
  Object.defineProperty(fn, 'source', { value: rule.source, enumerable: false });
  return Object.freeze(fn) as CompiledRule;
}

function generateChecked(
  ir: Node,
  source: string,
  file: string | undefined,
  registry: Operations = ops(),
  strictOwnProperties = false,
  limits?: Required<MappingLimits>,
  properties?: PropertyDescriptorMap,
): CompiledRule {
  if (countNodes(ir) > MAX_IR_NODES) {
    throw new DslCompileError([{ code: 'DSL_T110', severity: 'error', message: `the mapping compiles to more than ${MAX_IR_NODES} operations`, line: 1, column: 1, excerpt: '' }], [], file);
  }
  try {
    // A mapping builds its output owned and counted, with its limits in the code (see
    // codegen `#sink`); a condition takes its step budget as a parameter.
    const output = limits && {
      steps: limits.maxSteps,
      nodes: limits.maxOutputNodes,
      bytes: limits.maxOutputBytes,
      depth: limits.maxOutputDepth,
      raise: (limit: LimitKind): never => {
        throw limitError(limit, limits);
      },
    };
    return compileIr(ir, registry, output ? { output, strictOwnProperties } : { budget: true, strictOwnProperties }, properties);
  } catch (err) {
    if (err instanceof JsonLogicCompileError) {
      throw new DslCompileError([{ code: 'DSL_T108', severity: 'error', message: err.message, line: 1, column: 1, excerpt: source.split('\n')[0] ?? '' }], [], file);
    }
    throw err;
  }
}

function limitError(limit: LimitKind, limits: Required<MappingLimits>): DslRuntimeError {
  switch (limit) {
    case 'steps':
      return new DslRuntimeError('DSL_R103', `more than ${limits.maxSteps} array steps for one event`);
    case 'nodes':
      return new DslRuntimeError('DSL_R102', `more than ${limits.maxOutputNodes} values`);
    case 'depth':
      return new DslRuntimeError('DSL_R104', `deeper than ${limits.maxOutputDepth}`);
    case 'bytes':
      return new DslRuntimeError('DSL_R101', `more than ${limits.maxOutputBytes} bytes`);
  }
}

function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => a.line - b.line || a.column - b.column);
}

function countNodes(root: Node): number {
  let n = 0;
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if ((v as { type?: unknown }).type === 'literal') {
      n++;
      return;
    }
    n++;
    for (const x of Object.values(v)) visit(x);
  };
  visit(root);
  return n;
}
