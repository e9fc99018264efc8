/**
 * What policies, consent field gates and the personal-data sweep do to the places
 * personal data can be. Each place is a *variant*: a path pattern, its classes, and how
 * its value looks at this point (raw, hashed, masked). An action whose paths cover a
 * variant entirely, in a rule without a condition, changes it; anything less (a rule
 * with a `when`, a path that reaches only part of a region) leaves the old variant
 * possible beside the new one. Nothing is ever removed on a maybe.
 */
import { classify, PII_CLASSES, type PiiClass } from '../policy/pii.js'
import { jsonLogicFlows, type VFlow } from './flows.js'
import type { Location } from './locations.js'
import { covers, DEEP, overlaps, policyPattern, show, type PSeg } from './patterns.js'
import type { DataClass, Treatment } from './types.js'

export interface Variant {
  path: PSeg[]
  /** Readable origin (`traits.email`, `properties.<other>.**`, or where a `set` wrote). */
  label: string
  classes: Location['classes']
  why: string
  sweep: Location['sweep']
  treatment: Treatment
  /** Exists only in some events (a rule with a condition made or kept it). */
  conditional: boolean
  requires: string[]
  reasons: string[]
}

export interface PolicyState {
  variants: Variant[]
  /** The rule that drops every event (unconditionally). */
  droppedBy?: string
  /** Categories a `drop unless consent_granted` rule requires. */
  requires: string[]
  /** Destinations switched off for every event, with the rule. */
  disabled: Map<string, string>
  notes: string[]
}

export function initialState(locations: Location[]): PolicyState {
  return {
    variants: locations.map((l) => ({ path: l.path, label: show(l.path), classes: l.classes, why: l.why, sweep: l.sweep, treatment: 'raw', conditional: false, requires: [], reasons: [] })),
    requires: [],
    disabled: new Map(),
    notes: [],
  }
}

export function cloneState(s: PolicyState): PolicyState {
  return { variants: s.variants.map((v) => ({ ...v, requires: [...v.requires], reasons: [...v.reasons] })), droppedBy: s.droppedBy, requires: [...s.requires], disabled: new Map(s.disabled), notes: [...s.notes] }
}

const ENVELOPE = new Set(['type', 'event', 'messageId', 'timestamp', 'originalTimestamp', 'sentAt', 'receivedAt'])

function pathsOf(arg: unknown): string[] {
  if (Array.isArray(arg)) return arg.filter((p): p is string => typeof p === 'string')
  if (arg && typeof arg === 'object' && Array.isArray((arg as { paths?: unknown }).paths)) return pathsOf((arg as { paths: unknown }).paths)
  return []
}

/** `{"!": {"consent_granted": [{"var": ""}, "marketing"]}}` → ['marketing']. */
function consentUnlessGranted(when: unknown): string[] | undefined {
  if (!when || typeof when !== 'object' || Array.isArray(when)) return undefined
  const neg = (when as Record<string, unknown>)['!']
  const inner = Array.isArray(neg) && neg.length === 1 ? neg[0] : neg
  if (!inner || typeof inner !== 'object' || Array.isArray(inner)) return undefined
  const args = (inner as Record<string, unknown>).consent_granted
  if (!Array.isArray(args) || args.length < 2) return undefined
  const first = args[0] as { var?: unknown } | null
  if (!first || typeof first !== 'object' || (first.var !== '' && !(Array.isArray(first.var) && first.var[0] === ''))) return undefined
  const cats = args.slice(1)
  return cats.every((c) => typeof c === 'string') ? (cats as string[]) : undefined
}

function alwaysTrue(when: unknown): boolean {
  return when === undefined || when === true || (typeof when === 'string' && when.trim() === 'true')
}

type Transform = (v: Variant) => Variant | null

/**
 * Apply `fn` to the variants the paths reach: replace a variant the paths cover in an
 * unconditional rule; otherwise keep it and add the changed one.
 */
function act(state: PolicyState, paths: PSeg[][], conditional: boolean, fn: Transform): void {
  const next: Variant[] = []
  for (const v of state.variants) {
    const hit = paths.some((p) => overlaps(p, v.path))
    if (!hit) {
      next.push(v)
      continue
    }
    const whole = !conditional && paths.some((p) => covers(p, v.path))
    const changed = fn(v)
    if (!whole) next.push(v)
    if (changed) next.push(whole ? changed : { ...changed, conditional: true })
  }
  state.variants = next
}

export interface PolicyContext {
  /** Names of operations defined by the user (`operations:` in code): opaque to the analysis. */
  where: string
  scope: 'source' | 'destination'
}

/** Run a rule list over the state. */
export function applyPolicies(rules: unknown, state: PolicyState, ctx: PolicyContext): void {
  if (!Array.isArray(rules)) return
  rules.forEach((r, i) => {
    if (state.droppedBy) return
    if (!r || typeof r !== 'object') return
    const rule = r as { name?: unknown; when?: unknown; then?: unknown }
    const name = typeof rule.name === 'string' && rule.name ? rule.name : `rule[${i}]`
    const label = `${ctx.scope} policy "${name}" (${ctx.where}/${i})`
    const conditional = !alwaysTrue(rule.when)
    const actions = Array.isArray(rule.then) ? rule.then : [rule.then]
    for (const a of actions) {
      if (state.droppedBy) return
      if (a === 'drop' || (a && typeof a === 'object' && (a as { drop?: unknown }).drop === true)) {
        const cats = consentUnlessGranted(rule.when)
        if (!conditional) state.droppedBy = label
        else if (cats) {
          for (const c of cats) if (!state.requires.includes(c)) state.requires.push(c)
          state.notes.push(`${label} drops events without consent to ${cats.join(', ')}`)
        } else state.notes.push(`${label} may drop events (its condition is not analysed for consent)`)
        return
      }
      if (!a || typeof a !== 'object') continue
      const [kind] = Object.keys(a)
      const arg = (a as Record<string, unknown>)[kind!]
      const when = conditional ? ' when its condition holds' : ''
      switch (kind) {
        case 'allow': {
          if (conditional) {
            state.notes.push(`${label} keeps only some fields${when}; the analysis keeps them all (it may not fire)`)
            break
          }
          const allowed = pathsOf(arg).map((p) => ({ source: p, pat: [...policyPattern(p), DEEP] }))
          const next: Variant[] = []
          for (const v of state.variants) {
            const top = v.path[0]
            if (top?.k === 'key' && ENVELOPE.has(top.key) && v.path.length <= 2) {
              next.push(v)
              continue
            }
            let kept = false
            for (const a of allowed) {
              if (covers(a.pat, v.path)) {
                next.push({ ...v, reasons: [...v.reasons, `kept by ${label} (allow ${a.source})`] })
                kept = true
                break
              }
            }
            if (kept) continue
            for (const a of allowed) {
              if (!overlaps(a.pat, v.path)) continue
              const narrow = covers(v.path, a.pat)
              next.push({ ...v, path: narrow ? a.pat : v.path, label: narrow ? a.source : v.label, reasons: [...v.reasons, `kept by ${label} (allow ${a.source})`] })
            }
          }
          state.variants = next
          break
        }
        case 'redact':
          act(state, pathsOf(arg).map(policyPattern), conditional, () => null)
          if (conditional) markKept(state, pathsOf(arg), `${label} removes it only${when}`)
          break
        case 'hash':
          act(state, pathsOf(arg).map(policyPattern), conditional, (v) => ({ ...v, treatment: 'hashed', reasons: [...v.reasons, `hashed by ${label}${when}`] }))
          break
        case 'mask':
          act(state, pathsOf(arg).map(policyPattern), conditional, (v) =>
            v.treatment === 'hashed' ? null : { ...v, treatment: 'masked', reasons: [...v.reasons, `masked by ${label}${when}`] })
          break
        case 'set':
        case 'default': {
          if (!Array.isArray(arg)) break
          for (const item of arg) {
            if (!item || typeof item !== 'object' || !('expr' in item)) continue
            const target = (item as { path?: unknown }).path
            if (typeof target !== 'string') continue
            const flows = jsonLogicFlows((item as { expr: unknown }).expr, `${label} ${kind} ${target}`)
            state.variants.push(...flowsToVariants(flows, state.variants, [...policyPattern(target), DEEP], target, `written by ${label} (${kind} ${target})`))
          }
          break
        }
        case 'disable':
          if (ctx.scope === 'source' && Array.isArray(arg)) {
            for (const d of arg) if (typeof d === 'string') {
              if (!conditional) state.disabled.set(d, label)
              else state.notes.push(`${label} switches ${d} off for some events`)
            }
          }
          break
      }
    }
  })
}

function markKept(state: PolicyState, paths: string[], reason: string): void {
  const pats = paths.map(policyPattern)
  for (const v of state.variants) if (pats.some((p) => overlaps(p, v.path)) && !v.reasons.includes(reason)) v.reasons.push(reason)
}

/** The variants a value computed from `flows` makes at `path`. */
export function flowsToVariants(flows: VFlow[], variants: Variant[], path: PSeg[], label: string, reason: string): Variant[] {
  const out: Variant[] = []
  for (const f of flows) {
    if (f.src === null) {
      out.push({ path, label, classes: ALL_POSSIBLY, why: f.why.join('; '), sweep: 'by-value', treatment: f.kind === 'hashed' ? 'hashed' : 'raw', conditional: true, requires: [], reasons: [reason, ...f.why] })
      continue
    }
    const read = [...f.src, DEEP]
    for (const v of variants) {
      if (!overlaps(read, v.path)) continue
      const classes = f.kind === 'numeric' ? numericClasses(v.classes) : v.classes
      if (!Object.keys(classes).length) continue
      out.push({
        path, label, classes, why: v.why, sweep: 'by-value',
        treatment: compose(v.treatment, f.kind),
        conditional: true,
        requires: [...v.requires],
        reasons: [...v.reasons, `${reason}, from ${v.label}`, ...f.why],
      })
    }
  }
  return out
}

const ALL_POSSIBLY: Location['classes'] = { email: 'possibly', phone: 'possibly', ip: 'possibly', name: 'possibly', address: 'possibly', user_id: 'possibly', free_text: 'possibly' }

/** A number can carry a phone number's digits, a numeric id or a postal code; not an email, an IP, a name or text. */
export function numericClasses(c: Location['classes']): Location['classes'] {
  const out: Location['classes'] = {}
  for (const k of ['phone', 'user_id', 'address'] as const) if (c[k]) out[k] = c[k]
  return out
}

export function compose(t: Treatment, kind: VFlow['kind']): Treatment {
  if (kind === 'hashed' || t === 'hashed') return 'hashed'
  return t
}

/** Consent field gates: a field is removed unless its category is granted. */
export function applyFieldGates(state: PolicyState, fields: Record<string, string> | undefined): void {
  for (const [p, category] of Object.entries(fields ?? {})) {
    let pat: PSeg[]
    try {
      pat = policyPattern(p)
    } catch {
      continue
    }
    for (const v of state.variants) {
      if (covers(pat, v.path)) {
        if (!v.requires.includes(category)) v.requires.push(category)
        v.reasons.push(`consent.fields gates ${p} on ${category}`)
      }
    }
  }
}

// What the sweep's detector (src/policy/pii.ts classify) makes of values a field of
// some class may hold: if every one is detected as a class the sweep acts on, the field
// is always caught.
const PROBES: unknown[] = ['x', 'John Smith', 'a@b.com', 'A.B@EXAMPLE.COM', '+1 415 555 0123', '(415) 555-0123', '10.1.2.3', '2001:db8::1', '94107', 94107, '1 Main St', 'free text with a@b.com inside']

function lastKeys(path: PSeg[]): { key?: string; parent?: string } {
  const last = path[path.length - 1]
  const prev = path[path.length - 2]
  return { key: last?.k === 'key' ? last.key : undefined, parent: prev?.k === 'key' ? prev.key : undefined }
}

/**
 * The router-wide sweep (`pii`), for a destination it applies to: replaces (hash) or
 * removes (redact) what its detector finds. A field it always recognizes changes for
 * sure; free-form places and free text it catches only in part, which the reasons say.
 */
export function applySweep(state: PolicyState, pii: { action: 'redact' | 'hash'; classes?: PiiClass[] }): void {
  const classes = new Set<PiiClass>(pii.classes ?? PII_CLASSES)
  const verb = pii.action === 'hash' ? 'hashes' : 'removes'
  const next: Variant[] = []
  for (const v of state.variants) {
    if (v.treatment === 'hashed') {
      next.push(v)
      continue
    }
    let always = false
    if (v.sweep === 'address-object') always = classes.has('address')
    else if (v.sweep === 'by-key') {
      const { key, parent } = lastKeys(v.path)
      always = key !== undefined && PROBES.every((p) => {
        const c = classify(key, p, parent)
        return c !== undefined && classes.has(c)
      })
    }
    const changed: Variant | null = pii.action === 'redact' ? null : { ...v, treatment: 'hashed', reasons: [...v.reasons, `the pii sweep ${verb} it`] }
    if (always) {
      if (changed) next.push(changed)
      continue
    }
    const miss =
      v.sweep === 'envelope'
        ? `the pii sweep never changes ${v.label}`
        : v.sweep === 'by-key'
          ? `the pii sweep does not recognize every value at ${v.label}`
          : `the pii sweep ${verb} whole values it recognizes (emails, IPs, +international phones, fields with telling names) but not names, addresses or anything written inside text`
    next.push({ ...v, reasons: [...v.reasons, miss] })
    if (changed && v.sweep !== 'envelope') next.push({ ...changed, conditional: true })
  }
  state.variants = next
}

export type { DataClass }
