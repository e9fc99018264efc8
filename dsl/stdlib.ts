/**
 * The standard library: every function a mapping may call, with its arity and how
 * it lowers. Most are operations in the DSL's registry (prefixed `fp_`, so they
 * never collide with JSON-Logic names); the array functions take a lambda and
 * lower to the IR's bounded loops; `min`/`max` are JSON-Logic arithmetic.
 *
 * Every function returns null for input it cannot handle (a missing field, a
 * number where a string belongs): a mapping never throws on odd data.
 */
import * as crypto from 'node:crypto';
import { createOperations, type OperationFn, type Operations, type ValueKind } from '../src/policy/jsonlogic/operations.js';
import { FORBIDDEN_SEGMENTS, type LambdaOnlyOp, type IterateOp } from '../src/policy/jsonlogic/ir.js';
import { toEpochMillis } from '../src/policy/jsonlogic/operations.js';
import { isBotValue } from '../src/enrich/bots.js';

export type FunctionCategory = 'string' | 'number' | 'date' | 'hash' | 'phone' | 'url' | 'json' | 'array' | 'object' | 'logic';

export interface DslFunction {
  readonly name: string;
  readonly category: FunctionCategory;
  readonly arity: readonly [number, number];
  /** One line for the reference and for "did you mean". */
  readonly summary: string;
  /** How it lowers. */
  readonly impl:
    | { readonly kind: 'op'; readonly op: string; readonly argOrder?: readonly number[] }
    | { readonly kind: 'lambda'; readonly op: Exclude<IterateOp, 'all' | 'none'> | LambdaOnlyOp; readonly lambda: 'required' | 'optional' }
    | { readonly kind: 'arith'; readonly op: 'min' | 'max' };
}

/** Longest string the string functions build (pad, join, replace), in characters. */
export const MAX_STRING = 1_000_000;
/** Longest text `parseJson` parses. */
export const MAX_JSON_TEXT = 65_536;

const isStr = (v: unknown): v is string => typeof v === 'string';
const plain = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
};

const sha256Hex: (input: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (input) => (crypto as unknown as { hash(alg: string, data: string, enc: string): string }).hash('sha256', input, 'hex')
    : (input) => crypto.createHash('sha256').update(input, 'utf8').digest('hex');

const HEX64 = /^[0-9a-f]{64}$/;

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && v.length <= 64) {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : null;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (typeof v === 'boolean') return String(v);
  return null;
}

function normalizeEmail(v: unknown): string | null {
  if (!isStr(v)) return null;
  const e = v.trim().toLowerCase();
  return e === '' ? null : e;
}

/**
 * E.164: `+` and 8 to 15 digits. A number without `+` or `00` gets `defaultCountry`
 * (calling code digits, e.g. "1" or "44"); a national trunk 0 is dropped then.
 */
function e164(v: unknown, defaultCountry?: unknown): string | null {
  const digits = e164Digits(v, defaultCountry);
  return digits === null ? null : `+${digits}`;
}

/** The digits of `e164(v, defaultCountry)`, without the `+` (what `hashPhone` hashes). */
function e164Digits(v: unknown, defaultCountry?: unknown): string | null {
  const raw = text(v);
  if (raw === null || raw.length > 64) return null;
  const fast = phoneDigitsFast(raw);
  if (fast !== undefined) return fast === null ? null : withCountry(fast.digits, fast.international, defaultCountry);
  let s = raw.trim();
  let international = false;
  if (s.startsWith('+')) {
    international = true;
    s = s.slice(1);
  } else if (s.startsWith('00')) {
    international = true;
    s = s.slice(2);
  }
  // Extensions ("x123", "ext. 4") are not part of the number.
  s = s.replace(/(?:ext\.?|x|#).*$/i, '');
  if (/[^0-9\s().\-/]/.test(s)) return null;
  return withCountry(s.replace(/\D/g, ''), international, defaultCountry);
}

function withCountry(found: string, international: boolean, defaultCountry: unknown): string | null {
  let digits = found;
  if (!international) {
    const cc = text(defaultCountry)?.replace(/^\+/, '') ?? '';
    if (cc !== '' && /^[0-9]{1,3}$/.test(cc)) {
      if (!digits.startsWith(cc) || digits.length <= 10) digits = cc + digits.replace(/^0/, '');
    }
  }
  if (digits.length < 8 || digits.length > 15 || digits.startsWith('0')) return null;
  return digits;
}

/**
 * The digits of a phone number in one pass, for printable ASCII text (what the
 * regular expressions in `e164Digits` do): null when it is not a phone number, undefined
 * when the text needs the general path (other characters).
 */
function phoneDigitsFast(raw: string): { digits: string; international: boolean } | null | undefined {
  let start = 0;
  let end = raw.length;
  // trim(), for ASCII white space (anything else takes the general path).
  while (start < end && (raw.charCodeAt(start) === 32 || (raw.charCodeAt(start) >= 9 && raw.charCodeAt(start) <= 13))) start++;
  while (end > start && (raw.charCodeAt(end - 1) === 32 || (raw.charCodeAt(end - 1) >= 9 && raw.charCodeAt(end - 1) <= 13))) end--;
  let international = false;
  if (raw.charCodeAt(start) === 43 /* + */) {
    international = true;
    start++;
  } else if (raw.charCodeAt(start) === 48 && raw.charCodeAt(start + 1) === 48 /* 00 */) {
    international = true;
    start += 2;
  }
  let digits = '';
  for (let i = start; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c >= 48 && c <= 57) digits += raw[i];
    else if (c === 120 || c === 88 || c === 35 /* x X # */) break; // an extension: not part of the number
    else if ((c === 101 || c === 69) && (raw.charCodeAt(i + 1) | 32) === 120 && (raw.charCodeAt(i + 2) | 32) === 116) break; // "ext"
    else if (c === 32 || (c >= 9 && c <= 13) || c === 40 || c === 41 || c === 46 || c === 45 || c === 47) continue; // space ( ) . - /
    else if (c >= 128) return undefined;
    else return null;
  }
  return { digits, international };
}

/** `normalize` then SHA-256 (at most two arguments: no rest array per call). */
function hashWith(normalize: (v: unknown, option?: unknown) => string | null) {
  return (v: unknown, option?: unknown): string | null => {
    if (isStr(v) && v.length === 64 && HEX64.test(v)) return v; // already hashed: never hash twice
    const n = normalize(v, option);
    return n === null ? null : sha256Hex(n);
  };
}

function normalizeText(v: unknown): string | null {
  const t = text(v);
  if (t === null) return null;
  const s = t.trim().toLowerCase();
  return s === '' ? null : s;
}

function iso(ms: number): string | null {
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  return new Date(ms).toISOString();
}

function millisOf(v: unknown): number | null {
  const ms = toEpochMillis(v);
  return Number.isFinite(ms) ? ms : null;
}

function parseUrl(v: unknown): Record<string, unknown> | null {
  if (!isStr(v) || v.length > 8192) return null;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return null;
  }
  const query: Record<string, unknown> = {};
  for (const [k, val] of u.searchParams) {
    if (FORBIDDEN_SEGMENTS.has(k) || Object.hasOwn(query, k)) continue;
    query[k] = val;
  }
  return {
    href: u.href, protocol: u.protocol.replace(/:$/, ''), host: u.host, hostname: u.hostname, port: u.port === '' ? null : Number(u.port),
    path: u.pathname, search: u.search, hash: u.hash, query,
  };
}

function urlParam(v: unknown, name: unknown): string | null {
  if (!isStr(v) || !isStr(name) || v.length > 8192) return null;
  const q = v.indexOf('?');
  let search = q === -1 ? v : v.slice(q + 1);
  const h = search.indexOf('#');
  if (h !== -1) search = search.slice(0, h);
  try {
    return new URLSearchParams(search).get(name);
  } catch {
    return null;
  }
}

function round(v: unknown, digits?: unknown): number | null {
  const n = toNumber(v);
  if (n === null) return null;
  const d = digits === undefined ? 0 : toNumber(digits);
  if (d === null || !Number.isInteger(d) || d < 0 || d > 12) return null;
  const f = 10 ** d;
  // Math.round(1.005 * 100) is 100: correct the binary representation first.
  return Math.round((n + Number.EPSILON * Math.abs(n)) * f) / f;
}

/** The implementations registered as `fp_<name>`. `returns` only when never null. */
const OPS: Record<string, { fn: OperationFn; arity: readonly [number, number]; returns?: ValueKind; pure?: boolean }> = {
  lower: { fn: (v: unknown) => (isStr(v) ? v.toLowerCase() : null), arity: [1, 1] },
  upper: { fn: (v: unknown) => (isStr(v) ? v.toUpperCase() : null), arity: [1, 1] },
  trim: { fn: (v: unknown) => (isStr(v) ? v.trim() : null), arity: [1, 1] },
  length: { fn: (v: unknown) => (isStr(v) || Array.isArray(v) ? v.length : null), arity: [1, 1] },
  split: {
    fn: (v: unknown, sep: unknown) => (isStr(v) && isStr(sep) ? v.split(sep) : null),
    arity: [2, 2],
  },
  join: {
    fn: (list: unknown, sep?: unknown) => {
      if (!Array.isArray(list)) return null;
      const s = sep === undefined ? ',' : text(sep) ?? '';
      const out = list.map((x) => text(x) ?? '').join(s);
      return out.length > MAX_STRING ? null : out;
    },
    arity: [1, 2],
  },
  replace: {
    fn: (v: unknown, find: unknown, by: unknown) => {
      if (!isStr(v) || !isStr(find) || find === '') return isStr(v) ? v : null;
      const out = v.split(find).join(text(by) ?? '');
      return out.length > MAX_STRING ? null : out;
    },
    arity: [3, 3],
  },
  substr: {
    fn: (v: unknown, start: unknown, len?: unknown) => {
      const s = text(v);
      const a = toNumber(start);
      if (s === null || a === null) return null;
      const from = a < 0 ? Math.max(0, s.length + a) : Math.min(a, s.length);
      if (len === undefined || len === null) return s.slice(from);
      const l = toNumber(len);
      return l === null ? null : s.slice(from, from + Math.max(0, l));
    },
    arity: [2, 3],
  },
  startsWith: { fn: (v: unknown, p: unknown) => isStr(v) && isStr(p) && v.startsWith(p), arity: [2, 2], returns: 'boolean' },
  endsWith: { fn: (v: unknown, p: unknown) => isStr(v) && isStr(p) && v.endsWith(p), arity: [2, 2], returns: 'boolean' },
  contains: {
    fn: (v: unknown, x: unknown) => (isStr(v) ? isStr(x) && v.includes(x) : Array.isArray(v) ? v.includes(x) : false),
    arity: [2, 2],
    returns: 'boolean',
  },
  padStart: {
    fn: (v: unknown, n: unknown, fill?: unknown) => {
      const s = text(v);
      const len = toNumber(n);
      if (s === null || len === null || len > 10_000) return null;
      return s.padStart(len, fill === undefined ? ' ' : text(fill) ?? ' ');
    },
    arity: [2, 3],
  },
  toNumber: { fn: toNumber, arity: [1, 1] },
  toInt: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : Math.trunc(n); }, arity: [1, 1] },
  round: { fn: round, arity: [1, 2] },
  floor: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : Math.floor(n); }, arity: [1, 1] },
  ceil: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : Math.ceil(n); }, arity: [1, 1] },
  abs: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : Math.abs(n); }, arity: [1, 1] },
  toIso: { fn: (v: unknown) => { const ms = millisOf(v); return ms === null ? null : iso(ms); }, arity: [1, 1] },
  toDate: { fn: (v: unknown) => { const ms = millisOf(v); return ms === null ? null : iso(ms)?.slice(0, 10) ?? null; }, arity: [1, 1] },
  unixSeconds: { fn: (v: unknown) => { const ms = millisOf(v); return ms === null ? null : Math.floor(ms / 1000); }, arity: [1, 1] },
  unixMillis: { fn: millisOf, arity: [1, 1] },
  fromUnixSeconds: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : iso(n * 1000); }, arity: [1, 1] },
  fromUnixMillis: { fn: (v: unknown) => { const n = toNumber(v); return n === null ? null : iso(n); }, arity: [1, 1] },
  sha256: { fn: (v: unknown) => { const t = text(v); return t === null ? null : sha256Hex(t); }, arity: [1, 1] },
  normalizeEmail: { fn: normalizeEmail, arity: [1, 1] },
  hashEmail: { fn: hashWith(normalizeEmail), arity: [1, 1] },
  e164: { fn: e164, arity: [1, 2] },
  hashPhone: { fn: hashWith(e164Digits), arity: [1, 2] },
  hashText: { fn: hashWith(normalizeText), arity: [1, 1] },
  parseUrl: { fn: parseUrl, arity: [1, 1] },
  urlParam: { fn: urlParam, arity: [2, 2] },
  parseJson: {
    fn: (v: unknown) => {
      if (!isStr(v) || v.length > MAX_JSON_TEXT) return null;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return null;
      }
    },
    arity: [1, 1],
  },
  toJson: {
    fn: (v: unknown) => {
      try {
        const s = JSON.stringify(v);
        return s === undefined || s.length > MAX_STRING ? null : s;
      } catch {
        return null;
      }
    },
    arity: [1, 1],
  },
  compact: { fn: (v: unknown) => (Array.isArray(v) ? v.filter((x) => x !== null && x !== undefined && x !== '') : null), arity: [1, 1] },
  keys: { fn: (v: unknown) => (plain(v) ? Object.keys(v).filter((k) => !FORBIDDEN_SEGMENTS.has(k)) : null), arity: [1, 1] },
  values: { fn: (v: unknown) => (plain(v) ? Object.keys(v).filter((k) => !FORBIDDEN_SEGMENTS.has(k)).map((k) => v[k]) : null), arity: [1, 1] },
  typeOf: {
    fn: (v: unknown) => (v === null || v === undefined ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v),
    arity: [1, 1],
    returns: 'string',
  },
  isBot: { fn: isBotValue, arity: [1, 1], returns: 'boolean' },
};

// Assigned, not written in the literal: TypeScript types a `toString` key in an object literal as Object's.
OPS['toString'] = {
    fn: (v: unknown) => {
      if (v === null || v === undefined) return null;
      if (typeof v === 'string') return v;
      const t = text(v);
      if (t !== null) return t;
      try {
        return JSON.stringify(v) ?? null;
      } catch {
        return null;
      }
    },
    arity: [1, 1],
  };

const SUMMARY: Record<string, [FunctionCategory, string]> = {
  lower: ['string', 'lower-case a string'],
  upper: ['string', 'upper-case a string'],
  trim: ['string', 'remove leading and trailing white space'],
  length: ['string', 'length of a string or an array'],
  split: ['string', 'split a string at a separator into an array'],
  join: ['string', 'join array items into a string (separator "," by default)'],
  replace: ['string', 'replace every occurrence of a text (not a pattern)'],
  substr: ['string', 'part of a string: start (negative counts from the end), optional length'],
  startsWith: ['string', 'whether a string starts with a prefix'],
  endsWith: ['string', 'whether a string ends with a suffix'],
  contains: ['string', 'whether a string contains a text, or an array an item'],
  padStart: ['string', 'pad a string on the left to a length'],
  matches: ['string', 'whether a string matches a regular expression (flags i, m, s, u)'],
  toNumber: ['number', 'a number from a number or numeric string'],
  toInt: ['number', 'toNumber, truncated to an integer'],
  round: ['number', 'round, optionally to a number of decimals'],
  floor: ['number', 'round down'],
  ceil: ['number', 'round up'],
  abs: ['number', 'absolute value'],
  min: ['number', 'the smallest of the arguments'],
  max: ['number', 'the largest of the arguments'],
  toIso: ['date', 'an ISO 8601 UTC timestamp from an ISO string or epoch milliseconds'],
  toDate: ['date', 'the date part (YYYY-MM-DD, UTC)'],
  unixSeconds: ['date', 'epoch seconds from an ISO string or epoch milliseconds'],
  unixMillis: ['date', 'epoch milliseconds from an ISO string (numbers pass through)'],
  fromUnixSeconds: ['date', 'an ISO timestamp from epoch seconds'],
  fromUnixMillis: ['date', 'an ISO timestamp from epoch milliseconds'],
  sha256: ['hash', 'SHA-256 hex of a value as text, without normalization'],
  normalizeEmail: ['hash', 'trim and lower-case an email'],
  hashEmail: ['hash', 'SHA-256 of the normalized email (an existing SHA-256 hex passes through)'],
  e164: ['phone', 'a phone number in E.164 (+14155550123), with an optional default calling code'],
  hashPhone: ['hash', 'SHA-256 of the E.164 digits without "+" (as Meta requires)'],
  hashText: ['hash', 'SHA-256 of trimmed, lower-cased text (names, cities, zip codes)'],
  parseUrl: ['url', 'a URL\'s parts: protocol, host, hostname, port, path, search, hash, query'],
  urlParam: ['url', 'one query parameter of a URL'],
  parseJson: ['json', 'parse JSON text (null when invalid)'],
  toJson: ['json', 'a value as JSON text'],
  compact: ['array', 'the items that are not null or ""'],
  keys: ['object', 'the keys of an object'],
  values: ['object', 'the values of an object'],
  typeOf: ['logic', 'the type: string, number, boolean, null, array or object'],
  isBot: ['logic', "whether a user agent (or an event's context.userAgent) is a bot's, by isbot"],
  map: ['array', 'transform each item'],
  filter: ['array', 'the items for which the lambda is truthy'],
  some: ['array', 'whether the lambda is truthy for some item'],
  every: ['array', 'whether the lambda is truthy for every item (true for [])'],
  sum: ['array', 'the sum of the items (or of the lambda); non-numbers count 0'],
  first: ['array', 'the first item (for which the lambda is truthy), or null'],
  count: ['array', 'the number of items (for which the lambda is truthy)'],
};

SUMMARY['toString'] = ['string', 'a value as text (objects and arrays as JSON)'];

function entry(name: string, arity: readonly [number, number], impl: DslFunction['impl']): DslFunction {
  const [category, summary] = SUMMARY[name]!;
  return { name, category, arity, summary, impl };
}

/** The functions by name. */
export const DSL_FUNCTIONS: ReadonlyMap<string, DslFunction> = new Map<string, DslFunction>([
  ...Object.entries(OPS).map(([name, op]) => [name, entry(name, op.arity, { kind: 'op', op: `fp_${name}` })] as const),
  ['matches', entry('matches', [2, 3], { kind: 'op', op: 'regex_test', argOrder: [1, 0, 2] })],
  ['min', entry('min', [1, 100], { kind: 'arith', op: 'min' })],
  ['max', entry('max', [1, 100], { kind: 'arith', op: 'max' })],
  ['map', entry('map', [2, 2], { kind: 'lambda', op: 'map', lambda: 'required' })],
  ['filter', entry('filter', [2, 2], { kind: 'lambda', op: 'filter', lambda: 'required' })],
  ['some', entry('some', [2, 2], { kind: 'lambda', op: 'some', lambda: 'required' })],
  ['every', entry('every', [2, 2], { kind: 'lambda', op: 'every', lambda: 'required' })],
  ['sum', entry('sum', [1, 2], { kind: 'lambda', op: 'sum', lambda: 'optional' })],
  ['first', entry('first', [1, 2], { kind: 'lambda', op: 'first', lambda: 'optional' })],
  ['count', entry('count', [1, 2], { kind: 'lambda', op: 'count', lambda: 'optional' })],
]);

/**
 * The registry mappings compile against: the JSON-Logic operations (so a JSON-Logic
 * rule inside a mapping can call them) plus the DSL's `fp_` operations.
 */
export function createDslOperations(): Operations {
  const ops = createOperations();
  addDslOperations(ops);
  return ops;
}

/** Adds the `fp_` operations to a registry (skipping any it already has). */
export function addDslOperations(ops: Operations): Operations {
  for (const [name, op] of Object.entries(OPS)) {
    if (ops.has(`fp_${name}`)) continue;
    ops.add(`fp_${name}`, op.fn, { pure: op.pure ?? true, arity: op.arity, ...(op.returns ? { returns: op.returns } : {}) });
  }
  return ops;
}
