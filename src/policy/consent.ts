/**
 * Consent: what the event says the user agreed to, and whether a destination (or a
 * single field) may receive the event under it.
 *
 * Read from, in this order of precedence for each category:
 * - the `Sec-GPC: 1` request header (recorded at intake as `context.gpc: true`): a
 *   legally binding opt-out of sale/sharing in California, so it denies the categories
 *   configured as sale/sharing whatever else the event says;
 * - RudderStack's `context.consentManagement { allowedConsentIds, deniedConsentIds,
 *   resolutionStrategy: 'and' | 'or' }` — a denied id wins over an allowed one, and the
 *   event's resolution strategy decides all-or-any;
 * - Segment's `context.consent.categoryPreferences { category: boolean }` — an empty
 *   object is consent information saying nothing is granted.
 */

export interface ConsentOptions {
  /**
   * When an event carries no consent information at all, may destinations that require
   * consent categories receive it? `'deny'` (the default) keeps the promise that a
   * vendor only sees data the user agreed to: an event from a page without a consent
   * manager, or a backend call that did not pass consent, reaches only destinations
   * that declare no consent categories. `'allow'` is Segment's behaviour (no consent
   * object → no enforcement), for sites whose users are not covered by opt-in laws.
   * @default 'deny'
   */
  missing?: 'allow' | 'deny'
  /** Categories a GPC signal opts out of. @default ['advertising', 'sale', 'sharing'] */
  gpcCategories?: string[]
  /**
   * Field-level gates: a field is removed unless its category is granted, e.g.
   * `{ 'traits.email': 'marketing', 'context.ip': 'analytics' }`. Paths may use `[*]`,
   * `*` and `**`.
   */
  fields?: Record<string, string>
}

export const DEFAULT_GPC_CATEGORIES = ['advertising', 'sale', 'sharing']

export interface EventConsent {
  /**
   * The event carries a consent manager's answer (Segment or RudderStack). GPC alone
   * does not count: it speaks only for its own categories, so the others still follow
   * the `missing` option.
   */
  known: boolean
  granted: ReadonlySet<string>
  denied: ReadonlySet<string>
  /** From RudderStack's resolutionStrategy: it overrides the destination's mode. */
  strategy: 'all' | 'any' | undefined
  gpc: boolean
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
}

/** What the event says about consent. */
export function readConsent(event: { context?: unknown }, gpcCategories: readonly string[] = DEFAULT_GPC_CATEGORIES): EventConsent {
  const context = obj(event.context)
  const granted = new Set<string>()
  const denied = new Set<string>()
  let known = false
  let strategy: 'all' | 'any' | undefined

  const prefs = obj(obj(context?.consent)?.categoryPreferences)
  if (prefs) {
    known = true
    for (const [k, v] of Object.entries(prefs)) (v === true ? granted : denied).add(k)
  }
  const cm = obj(context?.consentManagement)
  if (cm) {
    known = true
    for (const id of strings(cm.allowedConsentIds)) granted.add(id)
    for (const id of strings(cm.deniedConsentIds)) denied.add(id)
    if (cm.resolutionStrategy === 'and') strategy = 'all'
    else if (cm.resolutionStrategy === 'or') strategy = 'any'
  }
  const gpc = context?.gpc === true
  if (gpc) for (const c of gpcCategories) denied.add(c)
  for (const d of denied) granted.delete(d)
  return { known, granted, denied, strategy, gpc }
}

/**
 * May a destination that needs `categories` receive the event? A category denied by
 * GPC blocks in either mode: a sale/sharing flow is never "any of" something else.
 */
export function consentAllows(
  consent: EventConsent,
  categories: readonly string[],
  mode: 'all' | 'any' = 'all',
  missing: 'allow' | 'deny' = 'deny',
  gpcCategories: readonly string[] = DEFAULT_GPC_CATEGORIES,
): boolean {
  if (categories.length === 0) return true
  if (consent.gpc && categories.some((c) => gpcCategories.includes(c))) return false
  if (!consent.known) return missing === 'allow'
  const m = consent.strategy ?? mode
  return m === 'all' ? categories.every((c) => consent.granted.has(c)) : categories.some((c) => consent.granted.has(c))
}
