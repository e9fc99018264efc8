/**
 * Static checks on the AST: names (functions, variables), arity, lambdas, keys that
 * could reach a prototype, JSON-Logic rules; and warnings for suspicious code
 * (unused bindings, a path assigned twice, statements after `drop`, a rule an
 * earlier one shadows, a field no Segment event has, `+` on text).
 */
import type { Expr, Mapping, Rule, Stmt } from './ast.js';
import { diagnostic, type Diagnostic, type DslErrorCode, type Span } from './errors.js';
import { DSL_FUNCTIONS } from './stdlib.js';
import { FORBIDDEN_SEGMENTS } from '../src/policy/jsonlogic/ir.js';
import { JsonLogicCompileError } from '../src/policy/jsonlogic/errors.js';
import { lowerJsonLogic } from '../src/policy/jsonlogic/lower.js';
import type { Operations } from '../src/policy/jsonlogic/operations.js';
import { REGEX_MAX_PATTERN } from '../src/policy/jsonlogic/operations.js';

/** Top-level fields of Segment-spec events (after normalization). */
export const SEGMENT_FIELDS: ReadonlySet<string> = new Set([
  'type', 'event', 'name', 'category', 'properties', 'traits', 'context', 'integrations', 'userId', 'anonymousId',
  'groupId', 'previousId', 'messageId', 'timestamp', 'originalTimestamp', 'sentAt', 'receivedAt', 'channel', 'version',
]);

/** Largest index an output path may name (`items[3] = ...`). */
export const MAX_OUTPUT_INDEX = 1000;

interface Binding {
  readonly name: string;
  readonly span: Span;
  used: boolean;
  readonly warnUnused: boolean;
}

class Scope {
  readonly names = new Map<string, Binding>();
  constructor(readonly parent: Scope | null) {}
  lookup(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }
  visible(): string[] {
    return [...this.names.keys(), ...(this.parent?.visible() ?? [])];
  }
}

export interface CheckResult {
  readonly errors: Diagnostic[];
  readonly warnings: Diagnostic[];
}

export class Checker {
  readonly errors: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];

  constructor(readonly source: string, readonly operations: Operations) {}

  #report(code: DslErrorCode, message: string, span: Span): void {
    const d = diagnostic(code, message, span, this.source);
    (d.severity === 'warning' ? this.warnings : this.errors).push(d);
  }

  mapping(ast: Mapping): CheckResult {
    const top = new Scope(null);
    const rules: Rule[] = [];
    for (const item of ast.items) {
      if (item.type === 'Let') this.#declare(top, item.name, item.nameSpan, () => this.expr(item.value, top));
      else if (item.type === 'Rule') {
        this.#shadowedRule(item, rules);
        rules.push(item);
        if (item.when) this.expr(item.when, top);
        this.#block(item.body, new Scope(top));
      } else {
        this.#block(item.body, new Scope(top));
      }
    }
    this.#unused(top);
    return { errors: this.errors, warnings: this.warnings };
  }

  /** A condition on its own (a policy's `when`). */
  condition(expr: Expr): CheckResult {
    this.expr(expr, new Scope(null));
    return { errors: this.errors, warnings: this.warnings };
  }

  #shadowedRule(rule: Rule, earlier: readonly Rule[]): void {
    for (const e of earlier) {
      if (e.when !== null) continue;
      const types = e.eventTypes.length === 0 || (rule.eventTypes.length > 0 && rule.eventTypes.every((t) => e.eventTypes.includes(t)));
      const names = e.events.length === 0 || (rule.events.length > 0 && rule.events.every((n) => e.events.some((m) => m.value === n.value)));
      if (types && names) {
        this.#report('DSL_W104', `an earlier rule (line ${e.span.line}) matches every event this one would`, { ...rule.span, end: rule.span.start + 2 });
        return;
      }
    }
  }

  #declare(scope: Scope, name: string, span: Span, value?: () => void): void {
    value?.();
    if (name === 'event') {
      this.#report('DSL_T107', '"event" is the event itself; choose another name', span);
      return;
    }
    if (scope.names.has(name)) {
      this.#report('DSL_T107', `"${name}" is already defined in this block (line ${scope.names.get(name)!.span.line})`, span);
      return;
    }
    scope.names.set(name, { name, span, used: false, warnUnused: !name.startsWith('_') });
  }

  #unused(scope: Scope): void {
    for (const b of scope.names.values()) {
      if (!b.used && b.warnUnused) this.#report('DSL_W101', `"${b.name}" is never used`, b.span);
    }
  }

  #block(stmts: readonly Stmt[], scope: Scope): void {
    const assigned = new Map<string, Span>();
    let dropped: Span | null = null;
    let warned = false;
    for (const s of stmts) {
      if (dropped && !warned) {
        this.#report('DSL_W103', `nothing after "drop" (line ${dropped.line}) runs`, s.span);
        warned = true;
      }
      switch (s.type) {
        case 'Let':
          this.#declare(scope, s.name, s.nameSpan, () => this.expr(s.value, scope));
          break;
        case 'Assign': {
          for (const seg of s.target) {
            if (typeof seg.key === 'number') {
              if (seg.key > MAX_OUTPUT_INDEX) this.#report('DSL_T109', `index ${seg.key} is above ${MAX_OUTPUT_INDEX}`, seg.span);
            } else if (FORBIDDEN_SEGMENTS.has(seg.key)) {
              this.#report('DSL_T104', `"${seg.key}" can never be an output key`, seg.span);
            }
          }
          this.expr(s.value, scope);
          const key = JSON.stringify(s.target.map((t) => t.key));
          const before = assigned.get(key);
          if (before) this.#report('DSL_W102', `this path was already assigned on line ${before.line}; the later value wins`, s.target[0]!.span);
          assigned.set(key, s.span);
          break;
        }
        case 'SpreadStatement':
          this.expr(s.arg, scope);
          break;
        case 'Drop':
          dropped = s.span;
          break;
        case 'If':
          this.expr(s.test, scope);
          this.#block(s.then, new Scope(scope));
          if (s.otherwise) this.#block(s.otherwise, new Scope(scope));
          break;
      }
    }
    this.#unused(scope);
  }

  expr(e: Expr, scope: Scope): void {
    switch (e.type) {
      case 'Literal':
        return;
      case 'Identifier': {
        if (e.name === 'event') return;
        const b = scope.lookup(e.name);
        if (b) {
          b.used = true;
          return;
        }
        const hint = DSL_FUNCTIONS.has(e.name)
          ? ` (${e.name} is a function: ${e.name}(...))`
          : suggest(e.name, ['event', ...scope.visible()]) ?? (SEGMENT_FIELDS.has(e.name) ? ` (did you mean event.${e.name}?)` : '');
        this.#report('DSL_T103', `unknown variable "${e.name}"${hint}`, e.span);
        return;
      }
      case 'Member':
        if (FORBIDDEN_SEGMENTS.has(e.property)) this.#report('DSL_T104', `"${e.property}" can never be read`, e.propertySpan);
        else if (e.object.type === 'Identifier' && e.object.name === 'event' && !SEGMENT_FIELDS.has(e.property)) {
          this.#report('DSL_W105', `Segment events have no top-level "${e.property}"${suggest(e.property, [...SEGMENT_FIELDS]) ?? ''}`, e.propertySpan);
        }
        this.expr(e.object, scope);
        return;
      case 'Index':
        this.expr(e.object, scope);
        this.expr(e.index, scope);
        return;
      case 'Call':
        this.#call(e, scope);
        return;
      case 'Lambda':
        this.#report('DSL_T105', 'a lambda (x => ...) can only be the last argument of map, filter, some, every, sum, first or count', e.span);
        return;
      case 'Unary':
        this.expr(e.arg, scope);
        return;
      case 'Binary':
        if (e.op === '+' && (isText(e.left) || isText(e.right))) {
          this.#report('DSL_W106', '"+" adds numbers (text becomes NaN); join text with "&"', e.opSpan);
        }
        this.expr(e.left, scope);
        this.expr(e.right, scope);
        return;
      case 'Logical':
        this.expr(e.left, scope);
        this.expr(e.right, scope);
        return;
      case 'Conditional':
        this.expr(e.test, scope);
        this.expr(e.then, scope);
        this.expr(e.otherwise, scope);
        return;
      case 'Object':
        for (const en of e.entries) {
          if (en.type === 'Spread') this.expr(en.arg, scope);
          else {
            if (FORBIDDEN_SEGMENTS.has(en.key)) this.#report('DSL_T104', `"${en.key}" can never be an output key`, en.keySpan);
            this.expr(en.value, scope);
          }
        }
        return;
      case 'Array':
        for (const it of e.items) this.expr(it.type === 'Spread' ? it.arg : it, scope);
        return;
      case 'JsonLogic':
        try {
          lowerJsonLogic(e.rule, this.operations, { maxDepth: 64, maxNodes: 10_000 });
        } catch (err) {
          if (!(err instanceof JsonLogicCompileError)) throw err;
          this.#report('DSL_T106', err.message, e.span);
        }
        return;
    }
  }

  #call(e: Extract<Expr, { type: 'Call' }>, scope: Scope): void {
    const fn = DSL_FUNCTIONS.get(e.callee);
    if (!fn) {
      this.#report('DSL_T101', `unknown function "${e.callee}"${suggest(e.callee, [...DSL_FUNCTIONS.keys()]) ?? ''}`, e.calleeSpan);
      for (const a of e.args) if (a.type !== 'Lambda') this.expr(a, scope);
      return;
    }
    const [min, max] = fn.arity;
    if (e.args.length < min || e.args.length > max) {
      const want = min === max ? `${min}` : `${min} to ${max}`;
      this.#report('DSL_T102', `${e.callee} takes ${want} argument${max === 1 ? '' : 's'}, got ${e.args.length}`, e.span);
    }
    e.args.forEach((a, i) => {
      const lambdaSlot = fn.impl.kind === 'lambda' && i === 1;
      if (!lambdaSlot) {
        this.expr(a, scope);
        return;
      }
      if (a.type !== 'Lambda') {
        this.#report('DSL_T105', `the second argument of ${e.callee} is a lambda, like  ${e.callee}(list, x => x.price)`, a.span);
        this.expr(a, scope);
        return;
      }
      if (a.params.length < 1 || a.params.length > 2) {
        this.#report('DSL_T105', `the lambda of ${e.callee} takes the item and optionally its index, like  (x, i) => ...; got ${a.params.length} parameters`, a.span);
      }
      const inner = new Scope(scope);
      for (const p of a.params) this.#declare(inner, p.name, p.span);
      this.expr(a.body, inner);
      // An unused item or index parameter is normal (count(list, _ => true)); no warning.
      for (const b of inner.names.values()) b.used = true;
    });
    if (fn.impl.kind === 'lambda' && fn.impl.lambda === 'required' && e.args.length === 1) {
      // Arity already reported.
    }
    if (e.callee === 'matches') {
      const pattern = e.args[1];
      const flags = e.args[2];
      if (pattern?.type === 'Literal') {
        const f = flags === undefined ? '' : flags.type === 'Literal' ? flags.value : null;
        try {
          if (typeof pattern.value !== 'string') throw new Error('the pattern must be a string');
          if (pattern.value.length > REGEX_MAX_PATTERN) throw new Error(`the pattern is longer than ${REGEX_MAX_PATTERN} characters`);
          if (f !== null && (typeof f !== 'string' || !/^[imsu]*$/.test(f))) throw new Error('flags may only be i, m, s, u');
          new RegExp(pattern.value, typeof f === 'string' ? f : '');
        } catch (err) {
          this.#report('DSL_T108', `invalid regular expression: ${(err as Error).message}`, pattern.span);
        }
      }
    }
  }
}

function isText(e: Expr): boolean {
  return (e.type === 'Literal' && typeof e.value === 'string') || (e.type === 'Binary' && e.op === '&');
}

/** ` (did you mean "x"?)` for the closest name within edit distance 2, else null. */
export function suggest(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = c.toLowerCase() === lower ? 0 : distance(lower, c.toLowerCase(), bestD);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best === null || best === name ? null : ` (did you mean "${best}"?)`;
}

function distance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap || a.length > 64 || b.length > 64) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
