/**
 * Path patterns over an event, for reasoning about sets of fields rather than one
 * event's fields: `key` (one named key), `any` (one key or array index, optionally
 * except some names) and `deep` (zero or more segments). Both the catalogue of where
 * personal data sits and the policy paths of a config are turned into these, so
 * "does this policy touch every place this class can be?" is `covers`, and "can this
 * mapping read reach it?" is `overlaps`.
 */
import { compilePath } from '../policy/paths.js'

export type PSeg =
  | { readonly k: 'key'; readonly key: string }
  | { readonly k: 'any'; readonly except?: ReadonlySet<string> }
  | { readonly k: 'deep' }

export const key = (k: string): PSeg => ({ k: 'key', key: k })
export const ANY: PSeg = { k: 'any' }
export const DEEP: PSeg = { k: 'deep' }

/** A policy path (`traits.email`, `properties.products[*].sku`, `**.email`) as a pattern. */
export function policyPattern(source: string): PSeg[] {
  const segs = compilePath(source).segments
  const out: PSeg[] = []
  segs.forEach((s, i) => {
    if (s.kind === 'key') out.push(key(s.key))
    else if (s.kind === 'index') out.push(key(String(s.index)))
    else if (s.kind === 'any') out.push(ANY)
    // A trailing `**` matches every node below, not the node itself: one or more.
    else if (i === segs.length - 1) out.push(ANY, DEEP)
    else out.push(DEEP)
  })
  return out
}

function fits(a: PSeg, b: PSeg): boolean {
  if (a.k === 'deep' || b.k === 'deep') return true
  if (a.k === 'key' && b.k === 'key') return a.key === b.key
  if (a.k === 'key' && b.k === 'any') return !b.except?.has(a.key)
  if (a.k === 'any' && b.k === 'key') return !a.except?.has(b.key)
  return true
}

/** Is there a concrete path both patterns match? */
export function overlaps(p: readonly PSeg[], l: readonly PSeg[]): boolean {
  const seen = new Set<string>()
  const ov = (i: number, j: number): boolean => {
    const id = `${i},${j}`
    if (seen.has(id)) return false
    seen.add(id)
    const pEnd = i === p.length
    const lEnd = j === l.length
    if (pEnd && lEnd) return true
    if (!pEnd && p[i]!.k === 'deep' && ov(i + 1, j)) return true
    if (!lEnd && l[j]!.k === 'deep' && ov(i, j + 1)) return true
    if (pEnd || lEnd) return false
    const a = p[i]!
    const b = l[j]!
    if (a.k === 'deep' && b.k === 'deep') return true
    if (!fits(a, b)) return false
    return ov(a.k === 'deep' ? i : i + 1, b.k === 'deep' ? j : j + 1)
  }
  return ov(0, 0)
}

/** Does `p` match every concrete path `l` matches? (false when unsure) */
export function covers(p: readonly PSeg[], l: readonly PSeg[]): boolean {
  const memo = new Map<string, boolean>()
  const cov = (i: number, j: number): boolean => {
    const id = `${i},${j}`
    const hit = memo.get(id)
    if (hit !== undefined) return hit
    memo.set(id, false)
    let r: boolean
    if (i === p.length) r = j === l.length
    else if (p[i]!.k === 'deep') r = cov(i + 1, j) || (j < l.length && cov(i, j + 1))
    else if (j === l.length) r = false
    else {
      const a = p[i]!
      const b = l[j]!
      if (b.k === 'deep') r = false
      else if (a.k === 'key') r = b.k === 'key' && b.key === a.key && cov(i + 1, j + 1)
      else if (a.k === 'any') {
        const ok = b.k === 'key' ? !a.except?.has(b.key) : [...(a.except ?? [])].every((x) => b.except?.has(x))
        r = ok && cov(i + 1, j + 1)
      } else r = false
    }
    memo.set(id, r)
    return r
  }
  return cov(0, 0)
}

/** Readable form: `traits.email`, `properties.*.**`, `properties.<other>.**`. */
export function show(p: readonly PSeg[]): string {
  if (p.length === 0) return '(the whole event)'
  return p.map((s) => (s.k === 'key' ? s.key : s.k === 'deep' ? '**' : s.except?.size ? '<other>' : '*')).join('.')
}
