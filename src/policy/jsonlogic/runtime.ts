/**
 * The frozen runtime object that generated code receives. Generated functions
 * refer only to their parameter (the data), to these helpers and to a frozen
 * array of constants; nothing in a rule is ever turned into source text except
 * through `JSON.stringify`-escaped literals.
 *
 * The helpers reproduce json-logic-js 2.0.5 (the semantic reference) except
 * where noted with "deviation": reads of data are own-property only, and data
 * is never interpreted as logic.
 */
import { FORBIDDEN_SEGMENTS } from './ir.js';

const hasOwn = Object.hasOwn;
const getPrototypeOf = Object.getPrototypeOf;
const isArray = Array.isArray;
const ObjectProto = Object.prototype;
const arrayIndexOf = Array.prototype.indexOf;
const stringIndexOf = String.prototype.indexOf;
const arrayConcat = Array.prototype.concat;

/** JSON-Logic truthiness: like JavaScript, except that an empty array is falsy. */
function truthy(value: unknown): boolean {
  return isArray(value) ? value.length !== 0 : !!value;
}

/**
 * Own-property read with json-logic-js `var` semantics for one segment:
 * returns `undefined` when the property is absent, inherited or forbidden.
 */
function readOwn(target: unknown, key: string): unknown {
  if (target === null || target === undefined) return undefined;
  if (FORBIDDEN_SEGMENTS.has(key)) return undefined;
  return hasOwn(target as object, key) ? (target as Record<string, unknown>)[key] : undefined;
}

/** `var` with a path computed at run time (json-logic-js `var`, own properties only). */
function getVar(data: unknown, path: unknown, fallback: unknown): unknown {
  const notFound = fallback === undefined ? null : fallback;
  if (path === undefined || path === '' || path === null) return data;
  const segments = String(path).split('.');
  let current = data;
  for (let i = 0; i < segments.length; i++) {
    if (current === null || current === undefined) return notFound;
    current = readOwn(current, segments[i] as string);
    if (current === undefined) return notFound;
  }
  return current;
}

/**
 * The lookup `missing` does for each key. Deviation: json-logic-js evaluates
 * `{"var": key}`, so a key that is itself an object would be run as logic;
 * here an array key is `[path, default]` and anything else is a path.
 */
function lookupKey(data: unknown, key: unknown): unknown {
  if (isArray(key)) return getVar(data, key[0], key[1]);
  return getVar(data, key, undefined);
}

function missing(data: unknown, args: readonly unknown[]): unknown[] {
  const keys: readonly unknown[] = isArray(args[0]) ? (args[0] as unknown[]) : args;
  const out: unknown[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = lookupKey(data, key);
    if (value === null || value === '') out.push(key);
  }
  return out;
}

function missingSome(data: unknown, need: unknown, options: unknown): unknown[] {
  // json-logic-js applies {"missing": options}: an array is the argument list,
  // anything else is a single argument.
  const absent = missing(data, isArray(options) ? options : [options]);
  // Reads `.length` of whatever `options` is, and throws on null exactly like json-logic-js.
  if ((options as { length: number }).length - absent.length >= (need as number)) return [];
  return absent;
}

/** parseFloat as json-logic-js's `+` and `*` apply it (also maps -0 to 0). */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value === 0 ? 0 : value;
  return parseFloat(value as string);
}

/** One operand of `cat`, converted as `Array.prototype.join` does. */
function toText(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

/**
 * `arrayIndexOf.call(list, x) !== -1` as a plain loop: generated code calls this
 * instead of `.call`-ing the built-in (which the optimiser does not inline there).
 * Strict equality, so NaN is never found; holes only match through indexOf's rules.
 */
function arrayHas(list: readonly unknown[], x: unknown): boolean {
  if (x === undefined) return arrayIndexOf.call(list, x) !== -1;
  for (let i = 0, n = list.length; i < n; i++) if (list[i] === x) return true;
  return false;
}

/** `in` on a string haystack (json-logic-js: an empty haystack is false before searching). */
function stringHas(haystack: string, needle: unknown): boolean {
  return haystack !== '' && stringIndexOf.call(haystack, needle as string) !== -1;
}

/** `in`: substring for strings, strict membership for arrays, false otherwise. */
function inOp(needle: unknown, haystack: unknown): boolean {
  // Deviation: json-logic-js calls any `indexOf` it finds on the haystack; we
  // only use the built-in ones, so data can never supply the function.
  // An empty string haystack is falsy, and json-logic-js returns false before searching.
  if (typeof haystack === 'string') return haystack !== '' && stringIndexOf.call(haystack, needle as string) !== -1;
  if (isArray(haystack)) return arrayIndexOf.call(haystack, needle) !== -1;
  return false;
}

function substr(source: unknown, start: unknown, end?: unknown): string {
  const text = String(source);
  if ((end as number) < 0) {
    // Negative length counts from the end (PHP semantics, as json-logic-js).
    const temp = text.substr(start as number);
    return temp.substr(0, temp.length + (end as number));
  }
  return text.substr(start as number, end as number);
}

function merge(...args: unknown[]): unknown[] {
  return arrayConcat.apply([], args) as unknown[];
}

function cat(...args: unknown[]): string {
  let out = '';
  for (let i = 0; i < args.length; i++) out += toText(args[i]);
  return out;
}

// ------------------------------------------------------------------ mapping DSL helpers
// Used only by code generated from the IR nodes the DSL adds (object, concat, index,
// output statements). They never read or write a forbidden key and copy only own
// enumerable properties of plain data.

/** Which run-time limit a mapping exceeded. */
export type LimitKind = 'steps' | 'nodes' | 'bytes' | 'depth';

/** Thrown by generated code when a mapping exceeds a run-time limit (see `GenerateOptions.budget` and `.output`). */
export class LimitError extends Error {
  override readonly name = 'LimitError';
  readonly limit: LimitKind;
  constructor(limit: LimitKind, message: string) {
    super(message);
    this.limit = limit;
  }
}

function overBudget(): never {
  throw new LimitError('steps', 'the mapping ran more array steps than allowed');
}

function overLimit(limit: LimitKind): never {
  throw new LimitError(limit, limit === 'depth' ? 'the output nests too deeply' : limit === 'nodes' ? 'the output has too many values' : 'the output is too large');
}

function isPlainData(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || isArray(value)) return false;
  const proto = getPrototypeOf(value);
  return proto === ObjectProto || proto === null;
}

/** `object[key]` for a key computed at run time: an array index or an own property; missing → null. */
function getKey(object: unknown, key: unknown): unknown {
  if (object === null || object === undefined) return null;
  let k: string;
  if (typeof key === 'number') {
    if (!Number.isInteger(key)) return null;
    if (isArray(object) && key < 0) key = object.length + key;
    k = String(key);
  } else if (typeof key === 'string') k = key;
  else return null;
  if (FORBIDDEN_SEGMENTS.has(k) || typeof object !== 'object' && typeof object !== 'string') return null;
  if (typeof object === 'string') {
    const i = Number(k);
    return Number.isInteger(i) && i >= 0 && i < object.length && String(i) === k ? object[i] : null;
  }
  if (!hasOwn(object as object, k)) return null;
  const v = (object as Record<string, unknown>)[k];
  return v === undefined ? null : v;
}

/** Copies the own enumerable keys of plain data into `target`, skipping forbidden keys and nulls. */
function mergeInto(target: Record<string, unknown>, source: unknown): void {
  if (!isPlainData(source)) return;
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (FORBIDDEN_SEGMENTS.has(k)) continue;
    const v = source[k];
    if (v !== null && v !== undefined) target[k] = v;
  }
}

/** Concatenates the parts that are arrays into a fresh array (array literal with spread). */
function concatArrays(...parts: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (isArray(p)) for (let j = 0; j < p.length; j++) out.push(p[j] === undefined ? null : p[j]);
  }
  return out;
}

/**
 * The object at `parent[key]`, made ours: an existing plain object is replaced by a
 * shallow copy (it may be the event's), anything else by `{}`.
 */
function ensureObject(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = hasOwn(parent, key) ? parent[key] : undefined;
  const fresh: Record<string, unknown> = {};
  if (isPlainData(existing)) mergeInto(fresh, existing);
  parent[key] = fresh;
  return fresh;
}

/** Assigns below `root`, copying every container on the way (see ensureObject); index gaps fill with null. */
function setPath(root: Record<string, unknown>, path: readonly (string | number)[], value: unknown): void {
  if (value === null || value === undefined) return;
  let node: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as string | number;
    const last = i === path.length - 1;
    const next = path[i + 1];
    if (typeof seg === 'number') {
      const arr = node as unknown[];
      while (arr.length < seg) arr.push(null);
      if (last) {
        arr[seg] = value;
        return;
      }
      const existing = arr[seg];
      const child: Record<string, unknown> | unknown[] = typeof next === 'number'
        ? (isArray(existing) ? existing.slice() : [])
        : (() => { const o: Record<string, unknown> = {}; mergeInto(o, existing); return o; })();
      arr[seg] = child;
      node = child;
    } else {
      const obj = node as Record<string, unknown>;
      if (last) {
        obj[seg] = value;
        return;
      }
      const existing = hasOwn(obj, seg) ? obj[seg] : undefined;
      const child: Record<string, unknown> | unknown[] = typeof next === 'number'
        ? (isArray(existing) ? existing.slice() : [])
        : (() => { const o: Record<string, unknown> = {}; mergeInto(o, existing); return o; })();
      obj[seg] = child;
      node = child;
    }
  }
}

/** A number for `sum`: numbers and numeric strings count, anything else adds 0. */
function sumValue(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : 0;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

// ------------------------------------------------------------------ owned mapping output
// Generated mapping code builds its output from fresh objects. It counts what it builds
// itself in two locals (values, bytes): containers and literals by constants per build,
// strings by their length as they are placed. A value it did not build and that is not
// a string or a finite number (read from the event, returned by a function, bound to a
// local) is adopted through `own`: null, booleans as they are, non-finite numbers and
// non-JSON values as null, containers as a fresh, checked copy, whose values and bytes
// `own` (and `mergeOwn`, `concatOwn`) add to `cost`. The output's totals are its
// locals plus `cost`, checked against the limits once it is built (see codegen
// `#output`); `cost` is reset when an output starts, and a copy stops as soon as
// `cost` alone is over a limit, so no single copy can grow without bound.

/** Limits of one mapping output, fixed at compile time. */
export interface OutputLimits {
  readonly nodes: number;
  readonly bytes: number;
  readonly depth: number;
  /**
   * Throws the caller's error for a limit (the mapping DSL's coded errors); without
   * it a {@link LimitError} is thrown.
   */
  readonly raise?: (limit: LimitKind) => never;
}

/**
 * Values and bytes that `own`/`mergeOwn`/`concatOwn` added to the output being built;
 * after a whole output, `b` holds its total bytes. One output is built at a time
 * (nothing a mapping calls builds another), so one object serves every mapping.
 */
const cost = { n: 0, b: 0 };

function over(L: OutputLimits, limit: LimitKind): never {
  if (L.raise !== undefined) L.raise(limit);
  return overLimit(limit);
}

/** A fresh copy of `v` as plain JSON data at `depth`, adding to `cost` and checking `L`. */
function copyTree(v: unknown, depth: number, L: OutputLimits): unknown {
  if (++cost.n > L.nodes) over(L, 'nodes');
  if (depth > L.depth) over(L, 'depth');
  if (cost.b > L.bytes) over(L, 'bytes');
  switch (typeof v) {
    case 'string':
      cost.b += v.length + 2;
      return v;
    case 'number':
      cost.b += 8;
      return v - v === 0 ? v : null;
    case 'boolean':
      cost.b += 5;
      return v;
    case 'object': {
      if (v === null) {
        cost.b += 4;
        return null;
      }
      if (isArray(v)) {
        cost.b += 2;
        const out = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          out[i] = x === undefined ? null : copyTree(x, depth + 1, L);
          cost.b += 1;
        }
        return out;
      }
      if (!isPlainData(v)) return null;
      cost.b += 2;
      const out: Record<string, unknown> = {};
      const keys = Object.keys(v);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        if (FORBIDDEN_SEGMENTS.has(k)) continue;
        const x = v[k];
        if (x === null || x === undefined) continue;
        const c = copyTree(x, depth + 1, L);
        if (c === null) continue;
        out[k] = c;
        cost.b += k.length + 4;
      }
      return out;
    }
    default:
      return null;
  }
}

/**
 * Adopts a value that is not a string into the output at `depth` (the generated code
 * places strings itself): null and undefined as null, booleans and finite numbers as
 * they are, anything else through a counted copy (null for non-JSON values).
 */
function own(v: unknown, depth: number, L: OutputLimits): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'number':
      return v - v === 0 ? v : null;
    case 'object':
      return copyTree(v, depth, L);
    default:
      return null;
  }
}

/** A spread (`{ ...x }`) or merge statement in an output: adopts the own enumerable keys of plain data. */
function mergeOwn(target: Record<string, unknown>, source: unknown, depth: number, L: OutputLimits): void {
  if (!isPlainData(source)) return;
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (FORBIDDEN_SEGMENTS.has(k)) continue;
    const v = source[k];
    if (v === null || v === undefined) continue;
    const c = copyTree(v, depth, L);
    if (c === null) continue;
    target[k] = c;
    cost.b += k.length + 4;
  }
}

/** An array literal with spreads in an output: concatArrays, adopting every item. */
function concatOwn(depth: number, L: OutputLimits, ...parts: unknown[]): unknown[] {
  cost.n += 1;
  cost.b += 2;
  const out: unknown[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!isArray(p)) continue;
    for (let j = 0; j < p.length; j++) {
      const x = p[j];
      out.push(x === undefined ? (cost.b += 5, null) : copyTree(x, depth + 1, L));
      cost.b += 1;
    }
  }
  if (depth > L.depth) over(L, 'depth');
  return out;
}

/** An object of the non-null `values` under `keys` (distinct, never forbidden), in order. */
function objectOf(keys: readonly string[], ...values: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) out[keys[i] as string] = v;
  }
  return out;
}

/** Deep-freezes a JSON constant so a compiled rule can hand it out safely. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

const BUILTIN_PROTOTYPES: readonly object[] = [
  Object.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype,
  Function.prototype, Symbol.prototype, BigInt.prototype, Date.prototype, RegExp.prototype,
  Map.prototype, Set.prototype, WeakMap.prototype, Promise.prototype, Error.prototype,
  Object.getPrototypeOf(Uint8Array.prototype) as object, Uint8Array.prototype, ArrayBuffer.prototype,
];

/**
 * Whether `key` names something a built-in prototype has (`toString`, `length`,
 * `map`, …). Reads of such keys always check `hasOwn`; for other keys the
 * generated code only checks that no built-in prototype has gained the key
 * (pollution), which the optimiser folds to a constant.
 */
export function isBuiltinPrototypeKey(key: string): boolean {
  return BUILTIN_PROTOTYPES.some((proto) => key in proto);
}

/**
 * How a read of the static key `key` is kept to own properties (decided when a rule
 * is compiled, see codegen `#own`):
 * - `'own'`: Object.prototype has the key (`toString`, `valueOf` …, or it is polluted
 *   right now): every read checks `Object.hasOwn`;
 * - `'proto'`: some other built-in prototype has it (`length`, `name`, `search` …):
 *   a read from an object whose prototype is Object.prototype is own (the guard at
 *   function entry checks Object.prototype for the key); anything else checks `hasOwn`;
 * - `'none'`: no built-in prototype has it: the guard at function entry checks that
 *   Array/String/Number/Boolean.prototype (and so Object.prototype) still lack it, and
 *   reads are plain.
 */
export type KeyGuard = 'own' | 'proto' | 'none';

export function keyGuard(key: string): KeyGuard {
  if (FORBIDDEN_SEGMENTS.has(key) || key in Object.prototype) return 'own';
  return BUILTIN_PROTOTYPES.some((proto) => key in proto) ? 'proto' : 'none';
}

/** The helpers generated code may call; also used by operations.ts. */
export const runtime = Object.freeze({
  truthy,
  hasOwn,
  getPrototypeOf,
  ObjectProto,
  ArrayProto: Array.prototype,
  StringProto: String.prototype,
  NumberProto: Number.prototype,
  BooleanProto: Boolean.prototype,
  arrayIndexOf,
  stringIndexOf,
  parseFloat,
  str: String,
  isArray,
  getVar,
  missing,
  missingSome,
  toNumber,
  toText,
  inOp,
  substr,
  merge,
  cat,
  min: Math.min,
  max: Math.max,
  getKey,
  mergeInto,
  concatArrays,
  ensureObject,
  setPath,
  sumValue,
  overBudget,
  overLimit,
  arrayHas,
  stringHas,
  cost,
  own,
  mergeOwn,
  concatOwn,
  /** The Array constructor, for `new ArrayCtor(n)` in generated code (no global lookups there). */
  ArrayCtor: Array,
  objectOf,
  /** What a path read starts from when its base is null or undefined: reads as absent. */
  EMPTY: Object.freeze(Object.create(null)) as Readonly<Record<string, unknown>>,
});

export type Runtime = typeof runtime;
