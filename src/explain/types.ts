/** The shapes `explainConfig` returns: also the documented JSON of `firstparty explain --json`. */

/** The classes of personal data explain reports on. */
export const DATA_CLASSES = ['email', 'phone', 'ip', 'name', 'address', 'user_id', 'free_text'] as const
export type DataClass = (typeof DATA_CLASSES)[number]

/** How a value can leave: as it is, as a SHA-256 digest, or masked (IP network, first character). */
export type Treatment = 'raw' | 'hashed' | 'masked'
export const TREATMENTS: readonly Treatment[] = ['raw', 'hashed', 'masked']

/** One way a class of data can reach a destination. */
export interface Flow {
  treatment: Treatment
  /**
   * `true`: a field made for this class (traits.email) gets there this way.
   * `false` ("possibly"): only if the data is somewhere the analysis cannot see into —
   * a free-form field, free text, a dynamic path, a custom operation — or a rule that
   * may or may not fire; `reasons` says which.
   */
  certain: boolean
  /** Where in the event it comes from, e.g. `traits.email`, `properties.<other>.**`. */
  from: string
  /** Where it lands in what the destination's `send` receives, when a mapping decides it. */
  to?: string
  /** Consent categories needed on top of the destination's own (field gates, consent-conditioned drops). */
  requires: string[]
  /** Evidence: rules, mapping lines, what the plugin does, what the detector can miss. */
  reasons: string[]
}

export interface ClassVerdict {
  /** `never`, or the possible treatments (each `raw`/`hashed`/`masked`, prefixed `possibly ` when no flow is certain). */
  verdict: string
  /** The treatments that can happen, certain or not. Empty: never. */
  treatments: Treatment[]
  flows: Flow[]
}

export interface ConsentSummary {
  /** Categories the destination needs (its config's `consent`, else its plugin's). */
  categories: string[]
  mode: 'all' | 'any'
  from: 'destination' | 'plugin' | 'none'
  /** Events without any consent information still reach it (`consent.missing: allow`, or no categories). */
  withoutConsentInfo: boolean
  /** A GPC signal (Sec-GPC: 1) stops events to it (one of its categories is in `consent.gpcCategories`). */
  blockedByGpc: boolean
  /** Categories a source or destination policy additionally requires (a drop unless consent_granted). */
  policyRequires: string[]
  /** One line: "analytics (all); not without consent information; GPC: not affected". */
  text: string
}

export interface DestinationReport {
  name: string
  /** The plugin's name. */
  type: string
  enabled: boolean
  consent: ConsentSummary
  /** Where its payload shape comes from: a mapping (config, file or plugin default) or the whole event. */
  shape: string
  /** Per class. */
  classes: Record<DataClass, ClassVerdict>
  notes: string[]
}

export interface DenyRule {
  /** The rule as written. */
  text: string
  classes: DataClass[] | '*'
  treatments: Treatment[] | 'any'
  destinations: string[] | '*'
  /** Where it came from: `--deny` or `/privacy/deny/<i>`. */
  origin: string
}

export interface DenyViolation {
  rule: string
  origin: string
  destination: string
  class: DataClass
  treatment: Treatment
  certain: boolean
  from: string
  reasons: string[]
}

export interface Report {
  /** Bumped when the JSON shape changes incompatibly. */
  version: 1
  classes: readonly DataClass[]
  destinations: DestinationReport[]
  /** Things true of every destination (source policies, the sweep, assumptions). */
  notes: string[]
  deny: { rules: DenyRule[]; violations: DenyViolation[] }
}
