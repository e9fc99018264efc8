/**
 * Policies: ordered rules `{ when: <JSON-Logic>, then: <actions> }`, compiled once at
 * start-up. Source policies run on every event before it is queued; destination
 * policies run on that destination's copy just before it is queued for it.
 *
 * Every decision can be traced: which rule fired, which paths were removed, hashed,
 * masked or set — paths only, never values.
 */
import { ConfigError } from '../errors.js'
import { JsonLogicCompileError, type Compiler } from './jsonlogic/index.js'
import { compileCondition, DslCompileError } from '../../dsl/index.js'
import { compilePath, childPath, deleteAll, getPath, PathError, setPath, updateAll, visitPath, type CompiledPath } from './paths.js'
import { hashValue, maskIp, maskString, type PiiClass } from './pii.js'

type HashAs = PiiClass | 'auto' | 'text'

/** One action of a rule's `then`. */
export type PolicyAction =
  | 'drop'
  | { drop: true }
  | { allow: string[] }
  | { redact: string[] }
  | { hash: string[] | { paths: string[]; as?: HashAs } }
  | { mask: string[] | { paths: string[]; keepStart?: number; keepEnd?: number } }
  | { set: Array<{ path: string; value?: unknown; expr?: unknown }> }
  | { default: Array<{ path: string; value?: unknown; expr?: unknown }> }
  | { disable: string[] }

export interface PolicyRule {
  /** Shown in traces and counters. @default its index, `rule[2]` */
  name?: string
  /** JSON-Logic over the event, or a mapping-language condition as a string; absent means always. */
  when?: unknown
  then: PolicyAction | PolicyAction[]
}

export interface TraceEntry {
  rule: string
  action: string
  /** Concrete paths touched, e.g. `properties.products[1].sku`. */
  paths: string[]
}

/** What policies did to one event in one scope. */
export interface PolicyTrace {
  scope: 'source' | 'destination'
  destination?: string
  /** Rules whose `when` held, in order. */
  fired: string[]
  actions: TraceEntry[]
  /** The rule that dropped the event. */
  droppedBy?: string
  /** Destinations switched off for this event (source scope). */
  disabled: string[]
}

export interface RuleStats {
  evaluated: number
  fired: number
  dropped: number
  errors: number
}

type Step = (event: Record<string, unknown>, trace: PolicyTrace | undefined, out: { drop: boolean; disabled: Set<string> }) => void

export interface CompiledPolicies {
  readonly rules: ReadonlyArray<{ name: string; stats: RuleStats }>
  /** Apply to `event` in place. Returns whether to drop it and which destinations to skip. */
  /** `count: false` for dry runs (`router.evaluate`): the rule counters stay as they are. */
  run(event: Record<string, unknown>, trace?: PolicyTrace, count?: boolean): { drop: boolean; disabled: Set<string> }
}

/** Fields every event keeps through an allow-list: without them it is not an event. */
const ENVELOPE = ['type', 'event', 'messageId', 'timestamp', 'originalTimestamp', 'sentAt', 'receivedAt']

function fail(where: string, message: string): never {
  throw new ConfigError('CONFIG_INVALID', [{ path: where, message }], 'Invalid policy:')
}

function paths(list: unknown, where: string): CompiledPath[] {
  if (!Array.isArray(list) || list.length === 0) fail(where, 'must be a non-empty array of paths')
  return list.map((p, i) => {
    try {
      return compilePath(p as string)
    } catch (err) {
      if (err instanceof PathError) fail(`${where}/${i}`, err.message)
      throw err
    }
  })
}

function compileExpr(compiler: Compiler, rule: unknown, where: string): (data: unknown) => unknown {
  try {
    return compiler.compile(rule)
  } catch (err) {
    if (err instanceof JsonLogicCompileError) fail(`${where}${err.pointer}`, err.message)
    throw err
  }
}

/**
 * A rule's `when`: JSON-Logic, or a string in the mapping language
 * (`'event.event == "Order Completed" and event.properties.revenue >= 100'`). Both go
 * through the same IR and code generator, so they mean the same.
 */
function compileWhen(compiler: Compiler, rule: unknown, where: string): (data: unknown) => unknown {
  if (typeof rule !== 'string') return compileExpr(compiler, rule, where)
  try {
    return compileCondition(rule, { operations: compiler.operations, file: where })
  } catch (err) {
    if (err instanceof DslCompileError) fail(where, err.message)
    throw err
  }
}

function record(trace: PolicyTrace | undefined, rule: string, action: string, touched: string[]): void {
  if (trace && touched.length) trace.actions.push({ rule, action, paths: touched })
}

/** Keep only what the paths match (and the envelope); returns the removed paths. */
function allowOnly(event: Record<string, unknown>, allowed: CompiledPath[]): string[] {
  // `exact` places keep their whole subtree; their ancestors are pruned further down.
  const exact = new Set<string>(ENVELOPE)
  const ancestors = new Set<string>()
  for (const p of allowed) {
    visitPath(event, p, (_parent, _key, at) => {
      exact.add(at)
      for (let i = at.length - 1; i > 0; i--) if (at[i] === '.' || at[i] === '[') ancestors.add(at.slice(0, i))
    })
  }
  const removed: string[] = []
  const prune = (node: Record<string, unknown> | unknown[], at: string) => {
    const keys = Array.isArray(node) ? node.map((_, i) => String(i)) : Object.keys(node)
    // Backwards, so splicing an array item leaves the earlier indexes valid.
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!
      const here = childPath(at, node, k)
      if (exact.has(here)) continue
      const child = (node as Record<string, unknown>)[k]
      if (ancestors.has(here) && child !== null && typeof child === 'object') {
        prune(child as Record<string, unknown>, here)
        continue
      }
      removed.push(here)
      if (Array.isArray(node)) node.splice(Number(k), 1)
      else delete (node as Record<string, unknown>)[k]
    }
  }
  prune(event, '')
  return removed.reverse()
}

function compileAction(action: unknown, where: string, ruleName: string, compiler: Compiler, scope: 'source' | 'destination'): Step {
  const drop: Step = (_e, trace, out) => {
    out.drop = true
    if (trace) trace.droppedBy = ruleName
  }
  if (action === 'drop') return drop
  if (action === null || typeof action !== 'object' || Array.isArray(action)) fail(where, 'an action must be "drop" or an object like { redact: [paths] }')
  const keys = Object.keys(action)
  // Checked before `{ drop: true }`: `{ drop: true, redact: [...] }` is a mistake to report, not a drop.
  if (keys.length !== 1) fail(where, `an action has exactly one key (drop, allow, redact, hash, mask, set, default, disable); got ${keys.join(', ') || 'none'}`)
  if ((action as { drop?: unknown }).drop === true) return drop
  const kind = keys[0]!
  const arg = (action as Record<string, unknown>)[kind]
  const at = `${where}/${kind}`
  switch (kind) {
    case 'allow': {
      const ps = paths(arg, at)
      return (e, trace) => record(trace, ruleName, 'allow', allowOnly(e, ps))
    }
    case 'redact': {
      const ps = paths(arg, at)
      return (e, trace) => {
        for (const p of ps) record(trace, ruleName, 'redact', deleteAll(e, p))
      }
    }
    case 'hash': {
      const spec = Array.isArray(arg) ? { paths: arg, as: 'auto' as HashAs } : (arg as { paths?: unknown; as?: HashAs })
      if (!spec || typeof spec !== 'object') fail(at, 'must be an array of paths or { paths, as }')
      const as: HashAs = spec.as ?? 'auto'
      if (!['auto', 'text', 'email', 'phone', 'ip', 'card', 'national_id', 'address', 'name'].includes(as)) fail(`${at}/as`, `"${String(as)}" is not a kind of value to normalize`)
      const ps = paths(spec.paths, Array.isArray(arg) ? at : `${at}/paths`)
      return (e, trace) => {
        for (const p of ps) {
          const key = lastKey(p)
          record(trace, ruleName, 'hash', updateAll(e, p, (v) => hashValue(v, as, key)))
        }
      }
    }
    case 'mask': {
      const spec = Array.isArray(arg) ? { paths: arg } : (arg as { paths?: unknown; keepStart?: number; keepEnd?: number })
      if (!spec || typeof spec !== 'object') fail(at, 'must be an array of paths or { paths, keepStart, keepEnd }')
      const ps = paths(spec.paths, Array.isArray(arg) ? at : `${at}/paths`)
      const keepStart = (spec as { keepStart?: number }).keepStart
      const keepEnd = (spec as { keepEnd?: number }).keepEnd
      for (const [k, v] of [['keepStart', keepStart], ['keepEnd', keepEnd]] as const) {
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) fail(`${at}/${k}`, 'must be a non-negative integer')
      }
      const partial = keepStart !== undefined || keepEnd !== undefined
      return (e, trace) => {
        for (const p of ps) {
          record(trace, ruleName, 'mask', updateAll(e, p, (v) => (partial ? maskString(v, keepStart ?? 1, keepEnd ?? 0) : maskDefault(v))))
        }
      }
    }
    case 'set':
    case 'default': {
      if (!Array.isArray(arg) || arg.length === 0) fail(at, 'must be a non-empty array of { path, value } or { path, expr }')
      const items = arg.map((item, i) => {
        const w = `${at}/${i}`
        if (!item || typeof item !== 'object') fail(w, 'must be { path, value } or { path, expr }')
        const it = item as { path?: unknown; value?: unknown; expr?: unknown }
        let path: CompiledPath
        try {
          path = compilePath(it.path as string)
        } catch (err) {
          if (err instanceof PathError) fail(`${w}/path`, err.message)
          throw err
        }
        if (path.wild) fail(`${w}/path`, 'cannot set through a wildcard; name one place')
        if (('value' in it) === ('expr' in it)) fail(w, 'needs exactly one of value or expr')
        const value = 'expr' in it ? compileExpr(compiler, it.expr, `${w}/expr`) : (() => structuredClone(it.value))
        return { path, value }
      })
      const onlyMissing = kind === 'default'
      return (e, trace) => {
        const touched: string[] = []
        for (const it of items) {
          if (onlyMissing) {
            const cur = getPath(e, it.path)
            if (cur !== undefined && cur !== null && cur !== '') continue
          }
          if (setPath(e, it.path, it.value(e))) touched.push(it.path.source)
        }
        record(trace, ruleName, kind, touched)
      }
    }
    case 'disable': {
      if (scope !== 'source') fail(at, 'only source policies can switch destinations off; a destination policy can drop')
      if (!Array.isArray(arg) || arg.some((d) => typeof d !== 'string')) fail(at, 'must be an array of destination names')
      const names = arg as string[]
      return (_e, trace, out) => {
        for (const n of names) out.disabled.add(n)
        if (trace) trace.disabled.push(...names)
      }
    }
    default:
      fail(at, `unknown action "${kind}"; use drop, allow, redact, hash, mask, set, default or disable`)
  }
}

function lastKey(p: CompiledPath): string {
  const last = p.segments[p.segments.length - 1]
  return last?.kind === 'key' ? last.key : ''
}

/** IPs to their network (/24, /48); other strings keep their first character. */
function maskDefault(v: unknown): unknown {
  const ip = maskIp(v)
  return ip !== v ? ip : maskString(v, 1, 0)
}

/**
 * Compile an ordered rule list. `where` is the config pointer of the list
 * (`/policies`, `/destinations/2/policies`) so every error names its place.
 */
export function compilePolicies(rules: unknown, where: string, compiler: Compiler, scope: 'source' | 'destination'): CompiledPolicies {
  if (rules === undefined) rules = []
  if (!Array.isArray(rules)) fail(where, 'must be an array of { when, then } rules')
  const compiled = rules.map((r, i) => {
    const w = `${where}/${i}`
    if (!r || typeof r !== 'object' || Array.isArray(r)) fail(w, 'a rule is an object { name?, when?, then }')
    const rule = r as PolicyRule
    for (const k of Object.keys(rule)) if (!['name', 'when', 'then'].includes(k)) fail(`${w}/${k}`, 'is not a rule field (name, when, then)')
    const name = typeof rule.name === 'string' && rule.name ? rule.name : `rule[${i}]`
    const when = rule.when === undefined ? undefined : compileWhen(compiler, rule.when, `${w}/when`)
    if (rule.then === undefined) fail(`${w}/then`, 'is required')
    const actions = Array.isArray(rule.then) ? rule.then : [rule.then]
    const steps = actions.map((a, j) => compileAction(a, Array.isArray(rule.then) ? `${w}/then/${j}` : `${w}/then`, name, compiler, scope))
    return { name, when, steps, stats: { evaluated: 0, fired: 0, dropped: 0, errors: 0 } satisfies RuleStats }
  })
  return {
    rules: compiled.map((c) => ({ name: c.name, stats: c.stats })),
    run(event, trace, count = true) {
      // The common case on the hot path: no rules, nothing to allocate.
      if (compiled.length === 0) return NOTHING
      const noop: RuleStats = { evaluated: 0, fired: 0, dropped: 0, errors: 0 }
      const out = { drop: false, disabled: new Set<string>() }
      for (const r of compiled) {
        (count ? r.stats : noop).evaluated++
        if (r.when) {
          let hit: unknown
          try {
            hit = r.when(event)
          } catch {
            // A rule that throws on this event (a user operation, say) does not fire;
            // counted, so a broken rule shows in stats instead of in lost events.
            (count ? r.stats : noop).errors++
            continue
          }
          if (!truthy(hit)) continue
        }
        (count ? r.stats : noop).fired++
        trace?.fired.push(r.name)
        for (const step of r.steps) {
          step(event, trace, out)
          if (out.drop) {
            (count ? r.stats : noop).dropped++
            return out
          }
        }
      }
      return out
    },
  }
}

const NOTHING: { drop: boolean; disabled: Set<string> } = Object.freeze({ drop: false, disabled: new Set<string>() })

/** JSON-Logic truthiness: `[]` is false, `"0"` is true. */
export function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0
  return Boolean(v)
}
