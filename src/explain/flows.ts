/**
 * Value flows: where a computed value's content can come from. A flow says "this value
 * (or the part of it at `out`) may contain the event's data at `src`, unchanged
 * (`raw`), as a number derived from it (`numeric`) or as a digest (`hashed`)". `src`
 * null is an opaque source — a custom operation may return anything.
 *
 * Conditions are not flows: `x == "a"` yields a boolean, and a boolean is not the data
 * it was computed from (one bit of it, which docs/explain.md names as a limit).
 */
import { ANY, DEEP, key, type PSeg } from './patterns.js'

export type Kind = 'raw' | 'numeric' | 'hashed'

export interface VFlow {
  src: PSeg[] | null
  /** The value IS the event's subtree at `src` (so `.x` narrows it); else it is derived from it. */
  exact: boolean
  kind: Kind
  /** Position inside the value: keys, `*` (an item or any key), `**` (somewhere unknown). */
  out: string[]
  certain: boolean
  why: string[]
  /** The mapping line that reads the event (for evidence). */
  readLine?: number
}

export function whole(): VFlow {
  return { src: [], exact: true, kind: 'raw', out: [], certain: true, why: [] }
}

export function opaque(why: string): VFlow {
  return { src: null, exact: false, kind: 'raw', out: [], certain: false, why: [why] }
}

export function derived(flows: VFlow[], kind?: Kind): VFlow[] {
  return flows.map((f) => ({ ...f, exact: false, out: [], kind: kind === 'hashed' || f.kind === 'hashed' ? 'hashed' : kind === 'numeric' ? (f.kind === 'raw' ? 'numeric' : f.kind) : f.kind }))
}

export function member(flows: VFlow[], prop: string): VFlow[] {
  const out: VFlow[] = []
  for (const f of flows) {
    if (f.out.length === 0) {
      out.push(f.exact && f.src ? { ...f, src: [...f.src, key(prop)] } : f)
    } else if (f.out[0] === prop || f.out[0] === '*') out.push({ ...f, out: f.out.slice(1) })
    else if (f.out[0] === '**') out.push(f)
  }
  return out
}

export function memberAny(flows: VFlow[], why?: string): VFlow[] {
  const out: VFlow[] = []
  for (const f of flows) {
    let g: VFlow
    if (f.out.length === 0) g = f.exact && f.src ? { ...f, src: [...f.src, ANY] } : f
    else if (f.out[0] === '**') g = f
    else g = { ...f, out: f.out.slice(1) }
    out.push(why ? { ...g, certain: false, why: [...g.why, why] } : g)
  }
  return out
}

export function prefix(flows: VFlow[], seg: string): VFlow[] {
  return flows.map((f) => ({ ...f, out: [seg, ...f.out] }))
}

/** `{ ...x }`: an object's own keys land at keys the analysis knows only for object literals. */
export function spread(flows: VFlow[]): VFlow[] {
  return flows.map((f) => (f.out.length === 0 ? { ...f, out: ['**'] } : f))
}

/** JSON-Logic operations by what their result carries. */
const JL_BOOL = new Set(['==', '===', '!=', '!==', '>', '>=', '<', '<=', '!', '!!', 'in', 'starts_with', 'ends_with', 'regex_test', 'ip_in_cidr', 'date_before', 'date_after', 'consent_granted', 'gpc', 'has_pii', 'pii_class', 'missing', 'missing_some', 'all', 'some', 'none'])
const JL_NUMERIC = new Set(['+', '-', '*', '/', '%', 'min', 'max', 'days_since'])
const JL_VALUE = new Set(['if', '?:', 'and', 'or', '??', 'log'])
const JL_DERIVED = new Set(['cat', 'substr', 'merge', 'lower', 'upper', 'trim'])
const JL_HASH = new Set(['sha256'])

/**
 * The flows of a JSON-Logic rule's value. Operations it does not know (a custom
 * operation, say) are opaque: their result may be anything. Inside map/filter/reduce
 * bodies `var` reads an item: flows from the iterated array.
 */
export function jsonLogicFlows(rule: unknown, where: string, dslOps: (op: string) => Kind | 'bool' | undefined = () => undefined): VFlow[] {
  const walk = (r: unknown, item: VFlow[] | undefined): VFlow[] => {
    if (r === null || typeof r !== 'object') return []
    if (Array.isArray(r)) return prefix(r.flatMap((x) => walk(x, item)), '*')
    const keys = Object.keys(r)
    if (keys.length !== 1) return derived(Object.values(r).flatMap((x) => walk(x, item)))
    const op = keys[0]!
    const raw = (r as Record<string, unknown>)[op]
    const args = Array.isArray(raw) ? raw : [raw]
    if (op === 'var') {
      const p = args[0]
      const fallback = args.length > 1 ? walk(args[1], item) : []
      if (item) return [...derived(item), ...fallback]
      if (p === '' || p === null || p === undefined) return [whole(), ...fallback]
      if (typeof p === 'string' || typeof p === 'number') {
        const segs = String(p).split('.').filter((s) => s !== '').map((s) => key(s))
        return [{ src: segs, exact: true, kind: 'raw', out: [], certain: true, why: [] }, ...fallback]
      }
      return [{ src: [DEEP], exact: false, kind: 'raw', out: [], certain: false, why: [`${where}: a var whose path is computed`] }, ...derived(walk(p, item)), ...fallback]
    }
    if (op === 'map' || op === 'filter' || op === 'reduce') {
      const source = walk(args[0], item)
      const body = walk(args[1], op === 'reduce' ? [...source, ...walk(args[2], item)] : source)
      return [...derived(source), ...derived(body)]
    }
    const argFlows = () => args.flatMap((a) => walk(a, item))
    if (JL_BOOL.has(op)) return []
    if (JL_NUMERIC.has(op)) return derived(argFlows(), 'numeric')
    if (JL_VALUE.has(op)) return argFlows()
    if (JL_DERIVED.has(op)) return derived(argFlows())
    if (JL_HASH.has(op)) return derived(argFlows(), 'hashed')
    const dsl = op.startsWith('fp_') ? dslOps(op.slice(3)) : undefined
    if (dsl === 'bool') return []
    if (dsl) return derived(argFlows(), dsl)
    return [opaque(`${where}: operation "${op}" is not analysed (a custom operation may return any data)`), ...derived(argFlows())]
  }
  return walk(rule, undefined)
}
