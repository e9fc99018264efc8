/**
 * What a mapping lets through: for each field of its output, which parts of the event
 * flow into it and how (as they are, as a number, hashed). Works on the checked syntax
 * tree (dsl/ast.ts), so every flow names its line. Over-approximates: both branches of
 * every `if` and `? :`, every rule of the mapping, every item of every array.
 */
import { parse } from '../../dsl/index.js'
import type { Expr, Mapping, Stmt } from '../../dsl/ast.js'
import { derived, jsonLogicFlows, member, memberAny, opaque, prefix, spread, type Kind, type VFlow } from './flows.js'

/** A flow into the output, with the line that makes it. */
export interface OutFlow extends VFlow {
  line: number
  /** `user_id = event.userId` (the target and a short form of the expression). */
  text: string
}

const DERIVED = new Set(['lower', 'upper', 'trim', 'split', 'join', 'replace', 'substr', 'padStart', 'toString', 'toJson', 'parseJson', 'normalizeEmail', 'e164', 'parseUrl', 'urlParam', 'keys', 'values', 'toIso', 'toDate', 'fromUnixSeconds', 'fromUnixMillis'])
const HASHED = new Set(['sha256', 'hashEmail', 'hashPhone', 'hashText'])
const NUMERIC = new Set(['toNumber', 'toInt', 'round', 'floor', 'ceil', 'abs', 'unixSeconds', 'unixMillis', 'min', 'max'])
const BOOL = new Set(['length', 'startsWith', 'endsWith', 'contains', 'matches', 'typeOf', 'some', 'every', 'count'])

/** What a DSL function's result carries, for `fp_<name>` inside embedded JSON-Logic. */
export function dslFunctionKind(name: string): Kind | 'bool' | undefined {
  if (HASHED.has(name)) return 'hashed'
  if (NUMERIC.has(name)) return 'numeric'
  if (BOOL.has(name)) return 'bool'
  if (DERIVED.has(name) || name === 'compact') return 'raw'
  return undefined
}

type Env = Map<string, VFlow[]>

/** The output flows of a mapping's source. Throws nothing: a mapping that does not parse has no flows we can trust, so it is opaque. */
export function mappingFlows(source: string): { flows: OutFlow[]; errors: string[] } {
  const { ast, errors } = parse(source)
  if (errors.length) {
    return {
      flows: [{ ...opaque(`the mapping does not parse (${errors[0]!.code} at ${errors[0]!.line}:${errors[0]!.column})`), line: errors[0]!.line, text: '(unparsed)' }],
      errors: errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.message}`),
    }
  }
  return { flows: new Analyzer(source).mapping(ast), errors: [] }
}

class Analyzer {
  readonly out: OutFlow[] = []
  readonly lines: string[]

  constructor(source: string) {
    this.lines = source.split('\n')
  }

  mapping(ast: Mapping): OutFlow[] {
    const top: Env = new Map()
    for (const item of ast.items) {
      if (item.type === 'Let') top.set(item.name, this.expr(item.value, top))
      else this.stmts(item.body, new Map(top))
    }
    return this.out
  }

  #emit(flows: VFlow[], target: string[], line: number): void {
    for (const f of flows) {
      const at = f.readLine ?? line
      const text = (this.lines[at - 1] ?? '').trim().slice(0, 100)
      this.out.push({ ...f, out: [...target, ...f.out], line: at, text })
    }
  }

  stmts(body: readonly Stmt[], env: Env): void {
    for (const s of body) {
      switch (s.type) {
        case 'Let':
          env.set(s.name, this.expr(s.value, env))
          break
        case 'Assign':
          this.#emit(this.expr(s.value, env), s.target.map((t) => String(t.key)), s.span.line)
          break
        case 'SpreadStatement':
          this.#emit(spread(this.expr(s.arg, env)), [], s.span.line)
          break
        case 'If':
          this.stmts(s.then, new Map(env))
          this.stmts(s.otherwise ?? [], new Map(env))
          break
        case 'Drop':
          return
      }
    }
  }

  expr(e: Expr, env: Env): VFlow[] {
    switch (e.type) {
      case 'Literal':
        return []
      case 'Identifier':
        if (e.name === 'event' && !env.has('event')) return [{ src: [], exact: true, kind: 'raw', out: [], certain: true, why: [], readLine: e.span.line }]
        return env.get(e.name) ?? []
      case 'Member':
        return member(this.expr(e.object, env), e.property)
      case 'Index': {
        const obj = this.expr(e.object, env)
        if (e.index.type === 'Literal' && (typeof e.index.value === 'number' || typeof e.index.value === 'string')) return member(obj, String(e.index.value))
        return memberAny(obj, `line ${e.span.line}: a key computed at run time (the analysis cannot tell which field it reads)`)
      }
      case 'Call':
        return this.#call(e, env)
      case 'Lambda':
        return []
      case 'Unary':
        return e.op === '-' ? derived(this.expr(e.arg, env), 'numeric') : []
      case 'Binary': {
        const both = [...this.expr(e.left, env), ...this.expr(e.right, env)]
        if (e.op === '&') return derived(both)
        if (e.op === '+' || e.op === '-' || e.op === '*' || e.op === '/' || e.op === '%') return derived(both, 'numeric')
        return []
      }
      case 'Logical':
        return [...this.expr(e.left, env), ...this.expr(e.right, env)]
      case 'Conditional':
        return [...this.expr(e.then, env), ...this.expr(e.otherwise, env)]
      case 'Object':
        return e.entries.flatMap((en) => (en.type === 'Spread' ? spread(this.expr(en.arg, env)) : prefix(this.expr(en.value, env), en.key)))
      case 'Array':
        return e.items.flatMap((it) => (it.type === 'Spread' ? spread(this.expr(it.arg, env)) : prefix(this.expr(it, env), '*')))
      case 'JsonLogic':
        return jsonLogicFlows(e.rule, `line ${e.span.line}`, dslFunctionKind)
    }
  }

  #call(e: Extract<Expr, { type: 'Call' }>, env: Env): VFlow[] {
    const name = e.callee
    const lambda = e.args[1]?.type === 'Lambda' ? (e.args[1] as Extract<Expr, { type: 'Lambda' }>) : undefined
    if (['map', 'filter', 'first', 'some', 'every', 'count', 'sum'].includes(name)) {
      const source = this.expr(e.args[0]!, env)
      const item = memberAny(source)
      let body: VFlow[] = item
      if (lambda) {
        const inner = new Map(env)
        if (lambda.params[0]) inner.set(lambda.params[0].name, item)
        if (lambda.params[1]) inner.set(lambda.params[1].name, [])
        body = this.expr(lambda.body, inner)
      }
      switch (name) {
        case 'map':
          return prefix(body, '*')
        case 'filter':
          return source
        case 'first':
          return item
        case 'sum':
          return derived(body, 'numeric')
        default:
          return []
      }
    }
    const args = e.args.flatMap((a) => this.expr(a, env))
    if (name === 'compact') return args
    const kind = dslFunctionKind(name)
    if (kind === 'bool') return []
    if (kind) return derived(args, kind)
    return [opaque(`line ${e.span.line}: function "${name}" is not analysed`), ...derived(args)]
  }
}
