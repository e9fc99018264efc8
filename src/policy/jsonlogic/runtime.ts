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
});

export type Runtime = typeof runtime;
