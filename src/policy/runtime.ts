/**
 * A router's policy stage: one operations registry and compiler, the source policies,
 * and for each destination its consent gate, field gates, destination policies and
 * the personal-data sweep, in the order they run:
 *
 *   source policies → (per destination) consent gate → destination policies
 *     → field consent gates → personal-data sweep → queue
 *
 * The sweep runs last, as a safety net: what a destination policy hashed on purpose
 * stays hashed (a SHA-256 digest is not personal data to the detector).
 */
import { ConfigError } from '../errors.js'
import type { ConsentRequirement } from '../plugin.js'
import { consentAllows, DEFAULT_GPC_CATEGORIES, readConsent, type ConsentOptions, type EventConsent } from './consent.js'
import { compilePolicies, type CompiledPolicies, type PolicyRule, type PolicyTrace } from './engine.js'
import { createCompiler, createOperations, JsonLogicCompileError, type Compiler, type OperationFn, type OperationOptions } from './jsonlogic/index.js'
import { compilePath, deleteAll, PathError, type CompiledPath } from './paths.js'
import { classify, detectPii, hashValue, locatePii, PII_CLASSES, type PiiClass } from './pii.js'

export interface PiiOptions {
  /** What to do with detected personal data for destinations not in `allow`. */
  action: 'redact' | 'hash'
  /** Destination names that receive detected fields unchanged. */
  allow?: string[]
  /** Classes to act on. @default all */
  classes?: PiiClass[]
}

export interface PolicyOptions {
  policies?: unknown[]
  consent?: ConsentOptions
  pii?: PiiOptions
  operations?: Record<string, OperationOptions & { fn: OperationFn }>
}

export interface DestinationPolicy {
  name: string
  consent: ConsentRequirement | undefined
  policies: CompiledPolicies | undefined
  /** This destination changes events, so it needs its own copy. */
  mutates: boolean
}

export type Verdict =
  | { ok: true; event: Record<string, unknown> }
  | { ok: false; reason: 'consent' | 'policy' }

export interface PolicyRuntime {
  readonly compiler: Compiler
  readonly source: CompiledPolicies
  /** Compile one destination's stage; `where` is its config pointer. */
  destination(name: string, consent: ConsentRequirement | undefined, policies: unknown, where: string): DestinationPolicy
  readConsent(event: Record<string, unknown>): EventConsent
  /** Some destination has a consent requirement or field gates: events' consent must be read. */
  readonly needsConsent: boolean
  /**
   * Decide and shape the event for one destination. `event` is the shared, post-source
   * event: it is copied before anything changes it.
   */
  forDestination(event: Record<string, unknown>, consent: EventConsent, dp: DestinationPolicy, trace?: PolicyTrace, count?: boolean): Verdict
}

function configFail(path: string, message: string): never {
  throw new ConfigError('CONFIG_INVALID', [{ path, message }], 'Invalid policy configuration:')
}

export function createPolicyRuntime(options: PolicyOptions): PolicyRuntime {
  const ops = createOperations()
  const consentOpts = options.consent ?? {}
  const gpcCategories = consentOpts.gpcCategories ?? DEFAULT_GPC_CATEGORIES
  const missing = consentOpts.missing ?? 'deny'

  // Domain operations that need the whole event: pass `{"var": ""}` as the first argument.
  ops.add('consent_granted', (event: unknown, ...categories: unknown[]) => {
    const c = readConsent((event ?? {}) as Record<string, unknown>, gpcCategories)
    return categories.length > 0 && categories.every((x) => typeof x === 'string' && c.granted.has(x))
  }, { pure: true, arity: [2, Infinity], returns: 'boolean' })
  ops.add('gpc', (event: unknown) => readConsent((event ?? {}) as Record<string, unknown>, gpcCategories).gpc, { pure: true, arity: [1, 1], returns: 'boolean' })
  ops.add('pii_class', (value: unknown, key?: unknown) => classify(typeof key === 'string' ? key : '', value) ?? null, { pure: true, arity: [1, 2] })
  ops.add('has_pii', (value: unknown, ...classes: unknown[]) => {
    if (value === null || typeof value !== 'object') return classify('', value) !== undefined
    const found = detectPii(value as Record<string, unknown>)
    return classes.length === 0 ? found.length > 0 : found.some((f) => classes.includes(f.class))
  }, { pure: true, arity: [1, Infinity], returns: 'boolean' })
  for (const [name, op] of Object.entries(options.operations ?? {})) {
    try {
      ops.add(name, op.fn, op)
    } catch (err) {
      if (err instanceof JsonLogicCompileError) configFail(`/operations/${name}`, err.message)
      throw err
    }
  }
  const compiler = createCompiler({ operations: ops })
  const source = compilePolicies(options.policies, '/policies', compiler, 'source')

  const fieldGates: Array<{ path: CompiledPath; category: string }> = Object.entries(consentOpts.fields ?? {}).map(([p, category]) => {
    try {
      return { path: compilePath(p), category }
    } catch (err) {
      if (err instanceof PathError) configFail(`/consent/fields/${p.replace(/~/g, '~0').replace(/\//g, '~1')}`, err.message)
      throw err
    }
  })
  const pii = options.pii
  const piiClasses = new Set<PiiClass>(pii?.classes ?? PII_CLASSES)
  const piiAllowed = new Set(pii?.allow ?? [])

  let needsConsent = fieldGates.length > 0
  return {
    compiler,
    source,
    readConsent: (event) => readConsent(event, gpcCategories),
    get needsConsent() {
      return needsConsent
    },
    destination(name, consent, policies, where) {
      const compiled = policies === undefined ? undefined : compilePolicies(policies, `${where}/policies`, compiler, 'destination')
      if (consent && consent.categories.length > 0) needsConsent = true
      const sweeps = pii !== undefined && !piiAllowed.has(name)
      return {
        name,
        consent: consent && consent.categories.length > 0 ? consent : undefined,
        policies: compiled,
        mutates: (compiled?.rules.length ?? 0) > 0 || fieldGates.length > 0 || sweeps,
      }
    },
    forDestination(event, consent, dp, trace, count = true) {
      if (dp.consent && !consentAllows(consent, dp.consent.categories, dp.consent.mode ?? 'all', missing, gpcCategories)) {
        return { ok: false, reason: 'consent' }
      }
      if (!dp.mutates) return { ok: true, event }
      const copy = structuredClone(event)
      if (dp.policies) {
        const out = dp.policies.run(copy, trace, count)
        if (out.drop) return { ok: false, reason: 'policy' }
      }
      for (const gate of fieldGates) {
        // `denied` first: GPC denies its categories even when `missing: 'allow'` lets the rest through.
        if (!consent.denied.has(gate.category) && (consent.granted.has(gate.category) || (!consent.known && missing === 'allow'))) continue
        const removed = deleteAll(copy, gate.path)
        if (trace && removed.length) trace.actions.push({ rule: `consent:${gate.category}`, action: 'redact', paths: removed })
      }
      if (pii && !piiAllowed.has(dp.name)) {
        // Acts on each finding's parent and key: a path rebuilt from keys that are data
        // (`""`, `"a.b"`, `"*"`) would not compile, or would match other fields.
        const found = locatePii(copy).filter((f) => piiClasses.has(f.class))
        if (found.length) {
          const touched: string[] = []
          // Backwards: removing `a[0]` must not shift `a[1]` before it is handled.
          for (const f of found.reverse()) {
            if (pii.action === 'redact') {
              if (Array.isArray(f.parent)) f.parent.splice(Number(f.key), 1)
              else delete f.parent[f.key]
              touched.push(f.path)
            } else {
              const parent = f.parent as Record<string, unknown>
              const after = hashValue(parent[f.key], f.class)
              if (after !== parent[f.key]) {
                parent[f.key] = after
                touched.push(f.path)
              }
            }
          }
          if (trace && touched.length) trace.actions.push({ rule: 'pii', action: pii.action, paths: touched.reverse() })
        }
      }
      return { ok: true, event: copy }
    },
  }
}

export type { PolicyRule, PolicyTrace }
