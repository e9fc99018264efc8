/**
 * JSON-Logic → IR. Validates the rule completely (operators, arities, JSON-only
 * values, depth and size limits) so that code generation never sees bad input.
 */
import { JsonLogicCompileError, pointerToken } from './errors.js';
import {
  FORBIDDEN_SEGMENTS,
  type ArithOp,
  type CompareOp,
  type IfBranch,
  type IterateOp,
  type Node,
} from './ir.js';
import { deepFreeze } from './runtime.js';
import { FORBIDDEN_OPERATORS, type Operations } from './operations.js';

export interface LowerLimits {
  /** Deepest nesting of arrays/objects in a rule. */
  maxDepth: number;
  /** Most values (operators, arguments, literals) in a rule. */
  maxNodes: number;
}

const COMPARE_ARITY: Record<CompareOp, readonly [number, number]> = {
  '==': [2, 2], '===': [2, 2], '!=': [2, 2], '!==': [2, 2],
  '>': [2, 2], '>=': [2, 2], '<': [2, 3], '<=': [2, 3],
};
const ARITH_ARITY: Record<ArithOp, readonly [number, number]> = {
  '+': [0, Infinity], '*': [1, Infinity], '-': [1, 2], '/': [2, 2], '%': [2, 2],
  min: [1, Infinity], max: [1, Infinity],
};
const ITERATE = new Set<string>(['map', 'filter', 'all', 'some', 'none']);

const hasOwn = Object.hasOwn;
const NULL: Node = Object.freeze({ type: 'literal', value: null });

/** Lowers a JSON-Logic rule to IR, throwing {@link JsonLogicCompileError} on any problem. */
export function lowerJsonLogic(rule: unknown, operations: Operations, limits: LowerLimits): Node {
  let nodes = 0;

  function lower(value: unknown, at: string, depth: number): Node {
    if (++nodes > limits.maxNodes) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_NODES', at, `more than ${limits.maxNodes} values`);
    }
    if (depth > limits.maxDepth) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_DEPTH', at, `deeper than ${limits.maxDepth}`);
    }
    if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') {
      return { type: 'literal', value };
    }
    if (Array.isArray(value)) {
      const items: Node[] = [];
      for (let i = 0; i < value.length; i++) items.push(lower(value[i], `${at}/${i}`, depth + 1));
      if (items.every((n) => n.type === 'literal')) {
        return { type: 'literal', value: items.map((n) => (n as { value: unknown }).value) };
      }
      return { type: 'array', items };
    }
    if (typeof value !== 'object' || !isPlainObject(value)) {
      throw new JsonLogicCompileError('JSONLOGIC_INVALID_RULE', at, `${describe(value)} is not JSON data`);
    }
    const keys = Object.keys(value);
    if (keys.length !== 1) {
      // Not logic: json-logic-js returns such an object as it is.
      return { type: 'literal', value: deepFreeze(cloneJson(value, at, depth)) };
    }
    const op = keys[0] as string;
    const raw = (value as Record<string, unknown>)[op];
    const opAt = `${at}/${pointerToken(op)}`;
    const list = Array.isArray(raw) ? raw : [raw];
    const argAt = (i: number) => (Array.isArray(raw) ? `${opAt}/${i}` : opAt);
    const arg = (i: number) => lower(list[i], argAt(i), depth + (Array.isArray(raw) ? 2 : 1));
    const args = () => list.map((_, i) => arg(i));
    const arity = (min: number, max: number) => {
      if (list.length < min || list.length > max) {
        const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
        throw new JsonLogicCompileError('JSONLOGIC_ARITY', opAt, `expects ${want} argument(s), got ${list.length}`, op);
      }
    };

    if (FORBIDDEN_OPERATORS.has(op)) {
      throw new JsonLogicCompileError('JSONLOGIC_FORBIDDEN_OPERATOR', opAt, 'it would call methods of the data', op);
    }
    switch (op) {
      case 'var': {
        arity(0, 2);
        const fallback = list.length > 1 ? arg(1) : null;
        if (list.length === 0) return { type: 'data' };
        const path = arg(0);
        if (path.type === 'literal') {
          const p = path.value;
          if (p === undefined || p === '' || p === null) return { type: 'data' };
          if (typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean') {
            const segments = String(p).split('.');
            if (segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) return fallback ?? NULL;
            return { type: 'var', path: segments, fallback };
          }
        }
        return { type: 'dynamic_var', path, fallback };
      }
      case 'missing':
        return { type: 'missing', args: args() };
      case 'missing_some':
        arity(2, 2);
        return { type: 'missing_some', need: arg(0), keys: arg(1) };
      case 'if':
      case '?:': {
        const all = args();
        const branches: IfBranch[] = [];
        let i = 0;
        for (; i < all.length - 1; i += 2) branches.push({ test: all[i] as Node, then: all[i + 1] as Node });
        const otherwise = i < all.length ? (all[i] as Node) : null;
        if (branches.length === 0) return otherwise ?? NULL;
        return { type: 'if', branches, otherwise };
      }
      case 'and':
      case 'or':
        arity(1, Infinity);
        return { type: op, args: args() };
      case '!':
      case '!!':
        arity(1, 1);
        return { type: 'not', arg: arg(0), negate: op === '!' };
      case 'reduce':
        arity(2, 3);
        return { type: 'reduce', source: arg(0), body: arg(1), initial: list.length > 2 ? arg(2) : null };
      default:
        break;
    }
    if (hasOwn(COMPARE_ARITY, op)) {
      const [min, max] = COMPARE_ARITY[op as CompareOp];
      arity(min, max);
      return { type: 'compare', op: op as CompareOp, args: args() };
    }
    if (hasOwn(ARITH_ARITY, op)) {
      const [min, max] = ARITH_ARITY[op as ArithOp];
      arity(min, max);
      return { type: 'arith', op: op as ArithOp, args: args() };
    }
    if (ITERATE.has(op)) {
      arity(2, 2);
      return { type: 'iterate', op: op as IterateOp, source: arg(0), body: arg(1) };
    }
    const operation = operations.get(op);
    if (operation === undefined) {
      throw new JsonLogicCompileError('JSONLOGIC_UNKNOWN_OPERATOR', opAt, 'no such operation is registered', op);
    }
    arity(operation.arity[0], operation.arity[1]);
    return { type: 'call', op, args: args(), at: opAt };
  }

  function cloneJson(value: unknown, at: string, depth: number): unknown {
    if (++nodes > limits.maxNodes) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_NODES', at, `more than ${limits.maxNodes} values`);
    }
    if (depth > limits.maxDepth) {
      throw new JsonLogicCompileError('JSONLOGIC_MAX_DEPTH', at, `deeper than ${limits.maxDepth}`);
    }
    if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') {
      return value;
    }
    if (Array.isArray(value)) return value.map((v, i) => cloneJson(v, `${at}/${i}`, depth + 1));
    if (typeof value === 'object' && isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        // defineProperty: an own "__proto__" key stays an own key and never sets the prototype.
        Object.defineProperty(out, key, {
          value: cloneJson((value as Record<string, unknown>)[key], `${at}/${pointerToken(key)}`, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    throw new JsonLogicCompileError('JSONLOGIC_INVALID_RULE', at, `${describe(value)} is not JSON data`);
  }

  return lower(rule, '', 0);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return `an object of class ${Object.prototype.toString.call(value).slice(8, -1)}`;
  return `a ${typeof value}`;
}
