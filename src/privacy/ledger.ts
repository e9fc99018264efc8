/**
 * The sharing ledger's record of one delivered event: which field paths went to the
 * destination and how each went — never a value. Built when the event is routed (the
 * router knows the original subject and what policies masked) and written when the
 * destination accepts it.
 *
 * How a field went is read from what was sent: a 64-hex-digit string is `hashed` (the
 * SHA-256 our `hash` action, the DSL's `sha256()` and the vendors' normalizations
 * produce); a value a `mask` policy action produced, or a string with a run of `***`,
 * is `masked`; anything else is `raw`.
 */
import { compilePath, getPath } from '../policy/paths.js'
import type { PolicyTrace } from '../policy/engine.js'
import type { FieldTreatment, LedgerEntry } from './types.js'
import type { StoredSubject } from './subject.js'

/** A ledger entry before delivery. */
export type LedgerDraft = Omit<LedgerEntry, 'destination' | 'deliveredAt'>

const HEX64 = /^[0-9a-f]{64}$/i
const STARS = /\*{3,}/
/** More distinct paths than this are summarized by their parent (a free-form blob). */
const MAX_FIELDS = 500

/** Values that `mask` actions wrote in this event (read after the policies ran). */
export function maskedValues(event: unknown, traces: Array<PolicyTrace | undefined>): Set<string> | undefined {
  let out: Set<string> | undefined
  for (const t of traces) {
    if (!t) continue
    for (const a of t.actions) {
      if (a.action !== 'mask') continue
      for (const p of a.paths) {
        let v: unknown
        try {
          v = getPath(event, compilePath(p))
        } catch {
          continue
        }
        if (typeof v === 'string' || typeof v === 'number') (out ??= new Set()).add(String(v))
      }
    }
  }
  return out
}

function treatmentOf(v: string | number | boolean, masked: Set<string> | undefined): FieldTreatment {
  if (typeof v !== 'string') return masked !== undefined && masked.has(String(v)) ? 'masked' : 'raw'
  if (v.length === 64 && HEX64.test(v)) return 'hashed'
  if ((masked !== undefined && masked.has(v)) || (v.includes('***') && STARS.test(v))) return 'masked'
  return 'raw'
}

const RANK: Record<FieldTreatment, number> = { hashed: 0, masked: 1, raw: 2 }
/**
 * Field lists repeat: every "Order Completed" to one destination has the same paths and
 * treatments. Equal lists are shared (frozen), so a busy ledger holds one copy per shape.
 */
const SHAPES = new Map<string, LedgerEntry['fields']>()
const MAX_SHAPES = 2000

/** Every leaf path of `payload` (array indexes as `[]`) with its treatment; the strongest exposure wins per path. */
export function ledgerFields(payload: unknown, masked: Set<string> | undefined): LedgerEntry['fields'] {
  const seen = new Map<string, FieldTreatment>()
  const walk = (v: unknown, path: string, depth: number): void => {
    if (v === null || v === undefined) return
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      const t = treatmentOf(v, masked)
      const key = clean(path || '(root)')
      const had = seen.get(key)
      if (had === undefined) {
        if (seen.size >= MAX_FIELDS) return
        seen.set(key, t)
      } else if (RANK[t] > RANK[had]) seen.set(key, t)
      return
    }
    if (depth > 32) return
    if (Array.isArray(v)) {
      for (const x of v) walk(x, `${path}[]`, depth + 1)
      return
    }
    if (typeof v === 'object') {
      for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k, depth + 1)
    }
  }
  walk(payload, '', 0)
  let key = ''
  for (const [path, t] of seen) key += `${path}\u0000${t}\u0000`
  const shared = SHAPES.get(key)
  if (shared) return shared
  const fields = Object.freeze([...seen].map(([path, treatment]) => Object.freeze({ path, treatment }))) as LedgerEntry['fields']
  if (SHAPES.size >= MAX_SHAPES) SHAPES.delete(SHAPES.keys().next().value!)
  SHAPES.set(key, fields)
  return fields
}

/** PostgreSQL text cannot hold U+0000; an id or name carrying one must not fail a whole ledger batch. */
const clean = (s: string): string => (s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s)

/** The ledger draft for one event going to one destination. */
export function draftLedgerEntry(
  original: { messageId: string; type: string; event?: unknown; name?: unknown },
  subject: StoredSubject,
  payload: unknown,
  masked: Set<string> | undefined,
): LedgerDraft {
  const d: LedgerDraft = { messageId: clean(original.messageId), eventType: clean(original.type), fields: ledgerFields(payload, masked) }
  const name = typeof original.event === 'string' ? original.event : typeof original.name === 'string' ? original.name : undefined
  if (name) d.event = clean(name.slice(0, 200))
  if (subject.userId) d.userId = clean(subject.userId)
  if (subject.anonymousId) d.anonymousId = clean(subject.anonymousId)
  if (subject.emailHash) d.emailHash = subject.emailHash
  return d
}
