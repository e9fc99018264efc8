/**
 * Checked AST → the IR shared with JSON-Logic (src/policy/jsonlogic/ir.ts).
 *
 * - `event.a.b` is a `var` read of the scope data (the event), so the code
 *   generator's inline, prototype-safe path reads and prefix caching apply;
 * - locals (`let`, lambda items) get names unique in the tree;
 * - a mapping is one `if` chain over its rules, each branch an `output` node;
 *   no rule and no default → null (dropped);
 * - top-level `let`s are bound again where a rule uses them (a binding is
 *   evaluated only by the rules that need it).
 */
import type { EventTypeName, Expr, Mapping, Rule, Stmt } from './ast.js';
import { DSL_FUNCTIONS } from './stdlib.js';
import { lowerJsonLogic } from '../src/policy/jsonlogic/lower.js';
import type { Node, ObjectEntry, Stmt as IrStmt } from '../src/policy/jsonlogic/ir.js';
import type { Operations } from '../src/policy/jsonlogic/operations.js';

const NULL: Node = { type: 'literal', value: null };
const TRUE: Node = { type: 'literal', value: true };

type Env = ReadonlyMap<string, string>;
type TopLet = Extract<Stmt, { type: 'Let' }>;

export class Lowerer {
  #counter = 0;

  constructor(readonly operations: Operations) {}

  #fresh(name: string): string {
    return `${name}#${this.#counter++}`;
  }

  mapping(ast: Mapping): Node {
    const lets: TopLet[] = [];
    const branches: { test: Node; then: Node }[] = [];
    let otherwise: Node = NULL;
    let sawDefault = false;
    for (const item of ast.items) {
      if (item.type === 'Let') lets.push(item);
      else if (item.type === 'Rule') {
        const visible = [...lets];
        branches.push({ test: this.#ruleTest(item, visible), then: this.#output(item.body, visible) });
      } else if (!sawDefault) {
        sawDefault = true;
        otherwise = this.#output(item.body, [...lets]);
      }
    }
    if (branches.length === 0) return otherwise;
    return { type: 'if', branches, otherwise };
  }

  condition(expr: Expr): Node {
    return this.expr(expr, new Map());
  }

  #ruleTest(rule: Rule, lets: readonly TopLet[]): Node {
    const tests: Node[] = [];
    if (rule.eventTypes.length > 0) tests.push(oneOf(['type'], rule.eventTypes));
    if (rule.events.length > 0) tests.push(oneOf(['event'], rule.events.map((e) => e.value)));
    if (rule.when) {
      const { binds, env } = this.#topLets(lets, [rule.when]);
      let test = this.expr(rule.when, env);
      for (let i = binds.length - 1; i >= 0; i--) test = { type: 'let', name: binds[i]!.name, value: binds[i]!.value, body: test };
      tests.push(test);
    }
    if (tests.length === 0) return TRUE;
    return tests.length === 1 ? tests[0]! : { type: 'and', args: tests };
  }

  #output(body: readonly Stmt[], lets: readonly TopLet[]): Node {
    const { binds, env } = this.#topLets(lets, body);
    const stmts: IrStmt[] = binds.map((b) => ({ type: 'bind', name: b.name, value: b.value }));
    stmts.push(...this.#stmts(body, env));
    return { type: 'output', body: stmts };
  }

  /** The top-level lets `roots` may use (transitively), bound with fresh names, in order. */
  #topLets(lets: readonly TopLet[], roots: readonly (Expr | Stmt)[]): { binds: { name: string; value: Node }[]; env: Map<string, string> } {
    const names = new Set<string>();
    for (const r of roots) collectNames(r, names);
    const needed = new Set<number>();
    for (let i = lets.length - 1; i >= 0; i--) {
      const l = lets[i]!;
      // A later let of the same name hides earlier ones from what follows it.
      if (names.has(l.name) && ![...needed].some((j) => lets[j]!.name === l.name)) {
        needed.add(i);
        collectNames(l.value, names);
      }
    }
    const env = new Map<string, string>();
    const binds: { name: string; value: Node }[] = [];
    lets.forEach((l, i) => {
      if (!needed.has(i)) return;
      const value = this.expr(l.value, env);
      const name = this.#fresh(l.name);
      env.set(l.name, name);
      binds.push({ name, value });
    });
    return { binds, env };
  }

  #stmts(stmts: readonly Stmt[], outer: Env): IrStmt[] {
    const env = new Map(outer);
    const out: IrStmt[] = [];
    for (const s of stmts) {
      switch (s.type) {
        case 'Let': {
          const value = this.expr(s.value, env);
          const name = this.#fresh(s.name);
          env.set(s.name, name);
          out.push({ type: 'bind', name, value });
          break;
        }
        case 'Assign':
          out.push({ type: 'set', path: s.target.map((t) => t.key), value: this.expr(s.value, env) });
          break;
        case 'SpreadStatement':
          out.push({ type: 'merge', value: this.expr(s.arg, env) });
          break;
        case 'Drop':
          out.push({ type: 'drop' });
          return out;
        case 'If':
          out.push({
            type: 'when',
            test: this.expr(s.test, env),
            then: this.#stmts(s.then, env),
            otherwise: s.otherwise ? this.#stmts(s.otherwise, env) : [],
          });
          break;
      }
    }
    return out;
  }

  expr(e: Expr, env: Env): Node {
    switch (e.type) {
      case 'Literal':
        return { type: 'literal', value: e.value };
      case 'Identifier':
        if (e.name === 'event' && !env.has('event')) return { type: 'data' };
        return { type: 'local', name: env.get(e.name) ?? internal(`unbound ${e.name}`) };
      case 'Member':
      case 'Index': {
        // Collect a static path as far down as it goes: event.a.b[0].c
        const path: string[] = [];
        let base: Expr = e;
        for (;;) {
          if (base.type === 'Member') {
            path.unshift(base.property);
            base = base.object;
          } else if (base.type === 'Index' && base.index.type === 'Literal' && typeof base.index.value === 'number' &&
              Number.isInteger(base.index.value) && base.index.value >= 0) {
            path.unshift(String(base.index.value));
            base = base.object;
          } else break;
        }
        if (path.length === 0 && base.type === 'Index') {
          return { type: 'index', object: this.expr(base.object, env), key: this.expr(base.index, env) };
        }
        if (base.type === 'Identifier' && base.name === 'event' && !env.has('event')) {
          return { type: 'var', path, fallback: null };
        }
        return { type: 'get', object: this.expr(base, env), path };
      }
      case 'Call':
        return this.#call(e, env);
      case 'Lambda':
        return internal('lambda outside a call');
      case 'Unary':
        return e.op === '-'
          ? { type: 'arith', op: '-', args: [this.expr(e.arg, env)] }
          : { type: 'not', arg: this.expr(e.arg, env), negate: true };
      case 'Binary': {
        const args = [this.expr(e.left, env), this.expr(e.right, env)];
        switch (e.op) {
          case '+': case '-': case '*': case '/': case '%':
            return { type: 'arith', op: e.op, args };
          case '&':
            return { type: 'call', op: 'cat', args };
          case '==':
            return { type: 'compare', op: '===', args };
          case '!=':
            return { type: 'compare', op: '!==', args };
          case 'in':
            return { type: 'call', op: 'in', args };
          default:
            return { type: 'compare', op: e.op, args };
        }
      }
      case 'Logical': {
        const args = [this.expr(e.left, env), this.expr(e.right, env)];
        if (e.op === '??') return { type: 'coalesce', args };
        return { type: e.op, args };
      }
      case 'Conditional':
        return { type: 'if', branches: [{ test: this.expr(e.test, env), then: this.expr(e.then, env) }], otherwise: this.expr(e.otherwise, env) };
      case 'Object': {
        const entries: ObjectEntry[] = e.entries.map((en) =>
          en.type === 'Spread' ? { spread: this.expr(en.arg, env) } : { key: en.key, value: this.expr(en.value, env) });
        return { type: 'object', entries };
      }
      case 'Array': {
        if (!e.items.some((i) => i.type === 'Spread')) {
          const items = e.items.map((i) => this.expr(i as Expr, env));
          if (items.every((n) => n.type === 'literal')) return { type: 'literal', value: items.map((n) => (n as { value: unknown }).value) };
          return { type: 'array', items };
        }
        const parts: Node[] = [];
        let run: Node[] = [];
        const flush = () => {
          if (run.length) parts.push(run.every((n) => n.type === 'literal') ? { type: 'literal', value: run.map((n) => (n as { value: unknown }).value) } : { type: 'array', items: run });
          run = [];
        };
        for (const it of e.items) {
          if (it.type === 'Spread') {
            flush();
            parts.push(this.expr(it.arg, env));
          } else run.push(this.expr(it, env));
        }
        flush();
        return { type: 'concat', parts };
      }
      case 'JsonLogic':
        return lowerJsonLogic(e.rule, this.operations, { maxDepth: 64, maxNodes: 10_000 });
    }
  }

  #call(e: Extract<Expr, { type: 'Call' }>, env: Env): Node {
    const fn = DSL_FUNCTIONS.get(e.callee) ?? internal(`function ${e.callee}`);
    const impl = fn.impl;
    if (impl.kind === 'arith') return { type: 'arith', op: impl.op, args: e.args.map((a) => this.expr(a, env)) };
    if (impl.kind === 'op') {
      const args = e.args.map((a) => this.expr(a, env));
      const ordered = impl.argOrder ? impl.argOrder.filter((i) => i < args.length).map((i) => args[i]!) : args;
      return { type: 'call', op: impl.op, args: ordered };
    }
    const source = this.expr(e.args[0]!, env);
    const lambda = e.args[1];
    const param = this.#fresh(lambda?.type === 'Lambda' ? lambda.params[0]?.name ?? 'item' : 'item');
    const indexName = lambda?.type === 'Lambda' ? lambda.params[1]?.name : undefined;
    const index = indexName === undefined ? undefined : this.#fresh(indexName);
    let body: Node;
    if (lambda?.type === 'Lambda') {
      const inner = new Map(env);
      if (lambda.params[0]) inner.set(lambda.params[0].name, param);
      if (indexName !== undefined) inner.set(indexName, index!);
      body = this.expr(lambda.body, inner);
    } else {
      body = impl.op === 'sum' ? { type: 'local', name: param } : TRUE;
    }
    return index === undefined ? { type: 'iterate', op: impl.op, source, body, param } : { type: 'iterate', op: impl.op, source, body, param, index };
  }
}

function oneOf(path: string[], values: readonly (EventTypeName | string)[]): Node {
  const read: Node = { type: 'var', path, fallback: null };
  if (values.length === 1) return { type: 'compare', op: '===', args: [read, { type: 'literal', value: values[0] }] };
  return { type: 'call', op: 'in', args: [read, { type: 'literal', value: [...values] }] };
}

/** Every identifier name in a subtree (over-approximates the free ones, which is enough). */
function collectNames(node: Expr | Stmt, out: Set<string>): void {
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    const o = v as { type?: unknown; name?: unknown };
    if (o.type === 'Identifier' && typeof o.name === 'string') out.add(o.name);
    if (o.type === 'JsonLogic') return;
    for (const [k, x] of Object.entries(o)) if (k !== 'span' && k !== 'rule') visit(x);
  };
  visit(node);
}

function internal(what: string): never {
  throw new Error(`internal: ${what} (the checker should have reported it)`);
}
