/**
 * The registry of function operations a rule may call.
 *
 * Special forms (`var`, `if`, `and`, `map`, comparisons, arithmetic …) are part
 * of the language and live in `lower.ts`; everything that is "evaluate the
 * arguments, then call a function" lives here: the json-logic-js function
 * operations (`in`, `cat`, `substr`, `merge`, `log`), the domain operations
 * (`lower`, `sha256`, `regex_test`, `ip_in_cidr`, dates …) and whatever users add.
 *
 * There is no global registry: `createOperations()` returns a fresh one, so two
 * routers never see each other's operations.
 */
import * as crypto from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { isBotValue } from '../../enrich/bots.js';
import { parseIsoDate } from '../../iso-date.js';
import { JsonLogicCompileError } from './errors.js';
import { FORBIDDEN_SEGMENTS } from './ir.js';
import { runtime } from './runtime.js';

/** What an operation returns, when known: lets the code generator skip truthiness checks. */
export type ValueKind = 'boolean' | 'number' | 'string' | 'array' | 'any';

export type OperationFn = (...args: any[]) => unknown;

export interface OperationOptions {
  /**
   * A pure operation returns the same result for the same arguments and has no
   * side effects; calls whose arguments are all constants are then evaluated
   * once, at compile time.
   */
  pure: boolean;
  /**
   * `[min, max]` number of arguments, checked at compile time (`max` may be `Infinity`).
   * @default [0, Infinity]
   */
  arity?: readonly [number, number];
  /** @default 'any' */
  returns?: ValueKind;
  /**
   * Compile-time hook: receives the arguments that are constants (`constant[i]`
   * tells which) and may return a specialised implementation, e.g. with a
   * regular expression compiled once. Throwing rejects the rule with
   * `JSONLOGIC_INVALID_ARGUMENT` at the argument's location.
   */
  prepare?: (values: readonly unknown[], constant: readonly boolean[]) => OperationFn | undefined;
}

export interface Operation extends Required<Omit<OperationOptions, 'prepare'>> {
  readonly name: string;
  readonly fn: OperationFn;
  readonly prepare: OperationOptions['prepare'];
}

/** Operator names that are language constructs, not registrable operations. */
export const SPECIAL_FORMS: ReadonlySet<string> = new Set([
  'var', 'missing', 'missing_some', 'if', '?:', 'and', 'or', '!', '!!',
  '==', '===', '!=', '!==', '>', '>=', '<', '<=',
  '+', '-', '*', '/', '%', 'min', 'max',
  'map', 'filter', 'reduce', 'all', 'some', 'none',
]);

/** Operators that are refused outright. `method` calls arbitrary methods on data. */
export const FORBIDDEN_OPERATORS: ReadonlySet<string> = new Set(['method']);

const NAME = /^[A-Za-z_$][\w$]{0,63}$/;

/** A registry of operations. Create one with {@link createOperations}. */
export class Operations {
  readonly #ops = new Map<string, Operation>();
  #version = 0;

  /** Bumped by every `add`; compiled-rule caches are keyed by it. */
  get version(): number {
    return this.#version;
  }

  /**
   * Registers an operation. Names are identifiers (letters, digits, `_`, `$`;
   * at most 64 characters) and may not shadow a special form or an existing operation.
   * @example
   * ops.add('domain_of', (email) => typeof email === 'string' ? email.split('@')[1] ?? null : null,
   *   { pure: true, arity: [1, 1], returns: 'any' })
   */
  add(name: string, fn: OperationFn, options: OperationOptions): this {
    if (typeof name !== 'string' || !NAME.test(name) || FORBIDDEN_SEGMENTS.has(name)) {
      throw new JsonLogicCompileError('JSONLOGIC_OPERATION_NAME', '', 'names are identifiers of at most 64 characters', String(name));
    }
    if (FORBIDDEN_OPERATORS.has(name) || SPECIAL_FORMS.has(name) || this.#ops.has(name)) {
      throw new JsonLogicCompileError('JSONLOGIC_OPERATION_NAME', '', 'the name is taken', name);
    }
    if (typeof fn !== 'function') throw new TypeError(`operation ${name}: fn must be a function`);
    if (typeof options?.pure !== 'boolean') throw new TypeError(`operation ${name}: options.pure must be a boolean`);
    const arity = options.arity ?? [0, Infinity];
    if (!(arity[0] >= 0 && arity[1] >= arity[0])) throw new TypeError(`operation ${name}: bad arity`);
    this.#ops.set(name, Object.freeze({
      name,
      fn,
      pure: options.pure,
      arity: Object.freeze([arity[0], arity[1]] as const),
      returns: options.returns ?? 'any',
      prepare: options.prepare,
    }));
    this.#version++;
    return this;
  }

  get(name: string): Operation | undefined {
    return this.#ops.get(name);
  }

  has(name: string): boolean {
    return this.#ops.has(name);
  }

  names(): string[] {
    return [...this.#ops.keys()];
  }
}

/** Functional alias of {@link Operations#add}. */
export function registerOperation(registry: Operations, name: string, fn: OperationFn, options: OperationOptions): Operations {
  return registry.add(name, fn, options);
}

export interface CreateOperationsOptions {
  /**
   * Receives the value of every `{"log": x}`. The default drops it: rules are
   * untrusted and may log personal data, so nothing is written anywhere unless
   * you pass a logger (json-logic-js writes to `console.log`).
   * @default () => {}
   */
  logger?: (value: unknown) => void;
  /**
   * Include the domain operations (`lower`, `upper`, `trim`, `sha256`,
   * `regex_test`, `starts_with`, `ends_with`, `ip_in_cidr`, `date_before`,
   * `date_after`, `days_since`, `is_bot`). The json-logic-js operations are always there.
   * @default true
   */
  domain?: boolean;
}

/** Longest input `regex_test` looks at; longer values do not match. */
export const REGEX_MAX_INPUT = 4096;
/** Longest pattern `regex_test` accepts. */
export const REGEX_MAX_PATTERN = 256;
const REGEX_FLAGS = /^[imsu]*$/;
const DAY_MS = 86_400_000;

/**
 * A fresh registry holding the json-logic-js function operations and, unless
 * `domain: false`, the domain operations.
 */
export function createOperations(options: CreateOperationsOptions = {}): Operations {
  const logger = options.logger ?? (() => {});
  const ops = new Operations();
  ops.add('in', runtime.inOp, { pure: true, arity: [2, 2], returns: 'boolean' });
  ops.add('cat', runtime.cat, { pure: true, returns: 'string' });
  ops.add('substr', runtime.substr, { pure: true, arity: [2, 3], returns: 'string' });
  ops.add('merge', runtime.merge, { pure: true, returns: 'array' });
  ops.add('log', (value: unknown) => {
    logger(value);
    return value;
  }, { pure: false, arity: [1, 1] });
  if (options.domain !== false) addDomainOperations(ops);
  return ops;
}

const text = (fn: (s: string) => string) => (value: unknown): string | null =>
  typeof value === 'string' ? fn(value) : null;

const sha256Hex: (input: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (input) => (crypto as unknown as { hash(alg: string, data: string, enc: string): string }).hash('sha256', input, 'hex')
    : (input) => crypto.createHash('sha256').update(input, 'utf8').digest('hex');

function compileRegex(pattern: unknown, flags: unknown): RegExp {
  if (typeof pattern !== 'string') throw new TypeError('the pattern must be a string');
  if (pattern.length > REGEX_MAX_PATTERN) throw new TypeError(`the pattern is longer than ${REGEX_MAX_PATTERN} characters`);
  const f = flags === undefined || flags === null ? '' : flags;
  if (typeof f !== 'string' || !REGEX_FLAGS.test(f)) throw new TypeError('flags may only be i, m, s, u');
  return new RegExp(pattern, f);
}

function regexTest(re: RegExp, value: unknown): boolean {
  const input = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
  if (input === null || input.length > REGEX_MAX_INPUT) return false;
  return re.test(input);
}

function buildBlockList(cidrs: unknown): BlockList {
  const list = new BlockList();
  const items = Array.isArray(cidrs) ? cidrs : [cidrs];
  for (const cidr of items) {
    if (typeof cidr !== 'string') throw new TypeError('a CIDR must be a string like "10.0.0.0/8"');
    const slash = cidr.indexOf('/');
    const address = slash === -1 ? cidr : cidr.slice(0, slash);
    const family = isIP(address);
    if (family === 0) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    const max = family === 4 ? 32 : 128;
    const prefix = slash === -1 ? max : Number(cidr.slice(slash + 1));
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash !== -1 && !/^\d{1,3}$/.test(cidr.slice(slash + 1)))) {
      throw new TypeError(`bad prefix length in ${JSON.stringify(cidr)}`);
    }
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

function ipIn(list: BlockList, ip: unknown): boolean {
  if (typeof ip !== 'string') return false;
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** Epoch milliseconds from epoch millis or an ISO 8601 string; NaN when neither. */
export function toEpochMillis(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : NaN;
  if (typeof value === 'string' && value.length <= 64) return parseIsoDate(value);
  return NaN;
}

/** Small bounded cache for patterns and CIDR lists that arrive at run time. */
function memo<T>(limit: number, build: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = build(key);
      if (cache.size >= limit) cache.delete(cache.keys().next().value as string);
      cache.set(key, hit);
    }
    return hit;
  };
}

function addDomainOperations(ops: Operations): void {
  ops.add('lower', text((s) => s.toLowerCase()), { pure: true, arity: [1, 1] });
  ops.add('upper', text((s) => s.toUpperCase()), { pure: true, arity: [1, 1] });
  ops.add('trim', text((s) => s.trim()), { pure: true, arity: [1, 1] });
  ops.add('sha256', (value: unknown) => {
    if (typeof value === 'string') return sha256Hex(value);
    if (typeof value === 'number' || typeof value === 'boolean') return sha256Hex(String(value));
    return null;
  }, { pure: true, arity: [1, 1] });
  ops.add('starts_with', (value: unknown, prefix: unknown) =>
    typeof value === 'string' && typeof prefix === 'string' && value.startsWith(prefix),
  { pure: true, arity: [2, 2], returns: 'boolean' });
  ops.add('ends_with', (value: unknown, suffix: unknown) =>
    typeof value === 'string' && typeof suffix === 'string' && value.endsWith(suffix),
  { pure: true, arity: [2, 2], returns: 'boolean' });

  const runtimeRegex = memo(64, (key) => {
    const [pattern, flags] = JSON.parse(key) as [unknown, unknown];
    return compileRegex(pattern, flags);
  });
  ops.add('regex_test', (pattern: unknown, value: unknown, flags?: unknown) => {
    let re: RegExp;
    try {
      re = runtimeRegex(JSON.stringify([pattern, flags ?? '']));
    } catch {
      return false;
    }
    return regexTest(re, value);
  }, {
    pure: true,
    arity: [2, 3],
    returns: 'boolean',
    prepare(values, constant) {
      if (!constant[0] || (values.length > 2 && !constant[2])) return undefined;
      const re = compileRegex(values[0], values[2]);
      return (_pattern: unknown, value: unknown) => regexTest(re, value);
    },
  });

  const runtimeCidrs = memo(64, (key) => buildBlockList(JSON.parse(key)));
  ops.add('ip_in_cidr', (ip: unknown, cidrs: unknown) => {
    let list: BlockList;
    try {
      list = runtimeCidrs(JSON.stringify(cidrs));
    } catch {
      return false;
    }
    return ipIn(list, ip);
  }, {
    pure: true,
    arity: [2, 2],
    returns: 'boolean',
    prepare(values, constant) {
      if (!constant[1]) return undefined;
      const list = buildBlockList(values[1]);
      return (ip: unknown) => ipIn(list, ip);
    },
  });

  // A user-agent string, or the event (`{"var": ""}`) whose context.userAgent is read.
  ops.add('is_bot', isBotValue, { pure: true, arity: [1, 1], returns: 'boolean' });

  ops.add('date_before', (a: unknown, b: unknown) => toEpochMillis(a) < toEpochMillis(b),
    { pure: true, arity: [2, 2], returns: 'boolean' });
  ops.add('date_after', (a: unknown, b: unknown) => toEpochMillis(a) > toEpochMillis(b),
    { pure: true, arity: [2, 2], returns: 'boolean' });
  ops.add('days_since', (date: unknown, now?: unknown) => {
    const then = toEpochMillis(date);
    const ref = now === undefined ? Date.now() : toEpochMillis(now);
    const days = Math.floor((ref - then) / DAY_MS);
    return Number.isNaN(days) ? null : days;
  }, { pure: false, arity: [1, 2] });
}
