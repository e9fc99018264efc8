/**
 * `explainConfig`: from a config alone — source and destination policies, consent,
 * the personal-data sweep, mappings and what each built-in plugin does in `send` —
 * which class of personal data can reach which destination, raw, hashed, masked or
 * never, and under which consent. Pure: reads mapping files, starts nothing.
 *
 * Sound first: whatever the analysis cannot see through (a free-form field, free text,
 * a computed key, a custom operation, a rule with a condition) counts as "possibly",
 * with the reason, never as "never". docs/explain.md says what that means and where it
 * stops.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve as resolvePath } from 'node:path'
import type { RouterOptions } from '../config.js'
import { ConfigError } from '../errors.js'
import type { DestinationDefinition, SourceDefinition } from '../plugin.js'
import { DEFAULT_GPC_CATEGORIES } from '../policy/consent.js'
import { compileDestinationMapping } from '../transform/mapping.js'
import { builtinDestinations } from '../../plugins/builtin.js'
import { HASHED_FIELDS } from '../../plugins/meta-capi/user-data.js'
import { checkDenyRules, parseDenyRule, unmatchedRules } from './deny.js'
import { whole, type VFlow } from './flows.js'
import { eventLocations } from './locations.js'
import { mappingFlows, type OutFlow } from './mapping.js'
import { DEEP, overlaps, show } from './patterns.js'
import { applyFieldGates, applyPolicies, applySweep, cloneState, compose, initialState, numericClasses, type PolicyState } from './policies.js'
import { DATA_CLASSES, TREATMENTS, type ClassVerdict, type ConsentSummary, type DataClass, type DenyRule, type DestinationReport, type Flow, type Report, type Treatment } from './types.js'

export { parseDenyRule, checkDenyRules } from './deny.js'
export { formatReport } from './format.js'

export interface ExplainOptions {
  /** Plugins the config names by type, besides the built-in ones (loadConfig's `plugins`). */
  plugins?: Array<DestinationDefinition | SourceDefinition>
  /** Where relative `mappingFile`s are. @default process.cwd() */
  baseDir?: string
  /** Deny rules besides the config's `privacy.deny` (e.g. from `--deny`). */
  deny?: string[]
}

const metaCapi = builtinDestinations.find((p) => p.name === 'meta-capi')

/** What a built-in plugin's `send` does to the payload it gets: a reason when it hashes what lands at `out`. */
function pluginHashes(plugin: DestinationDefinition, out: string[]): string | undefined {
  if (plugin !== metaCapi) return undefined
  if (out[0] === 'user_data' && (HASHED_FIELDS as readonly string[]).includes(out[1] ?? '')) {
    return `the meta-capi plugin normalizes and SHA-256-hashes user_data.${out[1]} before sending (plugins/meta-capi/user-data.ts)`
  }
  return undefined
}

function mappingSource(d: { mapping?: string | false; mappingFile?: string }, plugin: DestinationDefinition, baseDir: string): { source: string; origin: string } | undefined {
  if (d.mapping === false) return undefined
  if (typeof d.mapping === 'string') return { source: d.mapping, origin: 'its mapping' }
  if (d.mappingFile !== undefined) {
    const abs = isAbsolute(d.mappingFile) ? d.mappingFile : resolvePath(baseDir, d.mappingFile)
    return { source: readFileSync(abs, 'utf8'), origin: d.mappingFile }
  }
  if (typeof plugin.mapping === 'string') return { source: plugin.mapping, origin: `the ${plugin.name} plugin's default mapping` }
  return undefined
}

function emptyClasses(): Record<DataClass, ClassVerdict> {
  const out = {} as Record<DataClass, ClassVerdict>
  for (const c of DATA_CLASSES) out[c] = { verdict: 'never', treatments: [], flows: [] }
  return out
}

function consentSummary(
  d: { consent?: { categories: string[]; mode?: 'all' | 'any' } },
  plugin: DestinationDefinition | undefined,
  config: RouterOptions,
  policyRequires: string[],
): ConsentSummary {
  const req = d.consent ?? plugin?.consent
  const categories = req?.categories ?? []
  const mode = req?.mode ?? 'all'
  const missing = config.consent?.missing ?? 'deny'
  const gpc = config.consent?.gpcCategories ?? DEFAULT_GPC_CATEGORIES
  const withoutConsentInfo = categories.length === 0 || missing === 'allow'
  const blockedByGpc = categories.some((c) => gpc.includes(c))
  const parts: string[] = []
  parts.push(categories.length ? `${categories.join(mode === 'any' ? ' or ' : ' and ')}${d.consent ? '' : ` (${plugin?.name} default)`}` : 'no consent category')
  if (categories.length) parts.push(withoutConsentInfo ? 'also events without consent information (consent.missing: allow)' : 'not events without consent information')
  if (blockedByGpc) parts.push('not with GPC')
  if (policyRequires.length) parts.push(`a policy also requires ${policyRequires.join(' and ')}`)
  return { categories, mode, from: d.consent ? 'destination' : req ? 'plugin' : 'none', withoutConsentInfo, blockedByGpc, policyRequires, text: parts.join('; ') }
}

/** Cell flows from the mapping's output flows and the variants left after policies. */
function resolve(outFlows: OutFlow[], state: PolicyState, plugin: DestinationDefinition, shape: string): Record<DataClass, Flow[]> {
  const cells = Object.fromEntries(DATA_CLASSES.map((c) => [c, [] as Flow[]])) as Record<DataClass, Flow[]>
  const seen = new Set<string>()
  const add = (c: DataClass, f: Flow) => {
    const k = `${c}|${f.treatment}|${f.certain}|${f.from}|${f.to ?? ''}|${f.requires.join(',')}`
    if (seen.has(k)) return
    seen.add(k)
    cells[c].push(f)
  }
  for (const f of outFlows) {
    const to = f.line > 0 ? show(f.out.map((s) => (s === '*' ? { k: 'any' as const } : s === '**' ? { k: 'deep' as const } : { k: 'key' as const, key: s }))) : undefined
    const where = f.line > 0 ? `${shape}, line ${f.line}: ${f.text}` : undefined
    const hashedBy = pluginHashes(plugin, f.out)
    if (f.src === null) {
      for (const c of DATA_CLASSES) {
        add(c, { treatment: hashedBy || f.kind === 'hashed' ? 'hashed' : 'raw', certain: false, from: '(not the event: computed)', ...(to ? { to } : {}), requires: [], reasons: [...(where ? [where] : []), ...f.why, ...(hashedBy ? [hashedBy] : [])] })
      }
      continue
    }
    const read = [...f.src, DEEP]
    for (const v of state.variants) {
      if (!overlaps(read, v.path)) continue
      const classes = f.kind === 'numeric' ? numericClasses(v.classes) : v.classes
      for (const c of DATA_CLASSES) {
        const certainty = classes[c]
        if (!certainty) continue
        const treatment: Treatment = hashedBy ? 'hashed' : compose(v.treatment, f.kind)
        const reasons = [
          ...v.reasons,
          ...(where ? [where] : []),
          ...f.why,
          ...(hashedBy ? [hashedBy] : []),
          ...(certainty === 'possibly' && v.why ? [v.why] : []),
          ...(v.conditional ? ['only in some events (a rule with a condition, or a partial match)'] : []),
        ]
        add(c, { treatment, certain: certainty === 'yes' && f.certain && !v.conditional, from: v.label, ...(to !== undefined ? { to } : {}), requires: [...v.requires], reasons })
      }
    }
  }
  return cells
}

function verdictOf(flows: Flow[]): ClassVerdict {
  const treatments = TREATMENTS.filter((t) => flows.some((f) => f.treatment === t))
  const verdict = treatments.length === 0 ? 'never' : treatments.map((t) => (flows.some((f) => f.treatment === t && f.certain) ? t : `possibly ${t}`)).join(', ')
  return { verdict, treatments, flows }
}

/**
 * Explain a config: per destination and class of personal data, the treatments it can
 * arrive in (or never), under which consent, and why. Throws ConfigError for what the
 * router itself would refuse (an unknown plugin, a mapping that does not compile, a bad
 * deny rule).
 */
export function explainConfig(config: RouterOptions, options: ExplainOptions = {}): Report {
  const baseDir = options.baseDir ?? process.cwd()
  const plugins = new Map<string, DestinationDefinition>(builtinDestinations.map((p) => [p.name, p]))
  for (const p of [...(config.plugins ?? []), ...(options.plugins ?? [])]) {
    if (typeof (p as DestinationDefinition).send === 'function') plugins.set(p.name, p as DestinationDefinition)
  }
  const rules: DenyRule[] = [
    ...(config.privacy?.deny ?? []).map((r, i) => parseDenyRule(r, `/privacy/deny/${i}`)),
    ...(options.deny ?? []).map((r, i) => parseDenyRule(r, `--deny #${i + 1}`)),
  ]
  const notes: string[] = [
    'Classes follow the Segment spec: a field the spec names for something else (properties.order_id, products[].sku, context.userAgent, anonymousId) is taken to hold what the spec says; every other key may hold any class, and free text may contain any.',
  ]
  const source = initialState(eventLocations())
  applyPolicies(config.policies, source, { where: '/policies', scope: 'source' })
  notes.push(...source.notes)
  if (source.droppedBy) notes.push(`${source.droppedBy} drops every event: nothing reaches any destination`)
  if (config.pii) {
    notes.push(`The pii sweep (${config.pii.action}) runs for every destination except ${config.pii.allow?.length ? config.pii.allow.join(', ') : '(none)'}; it recognizes whole values and telling field names, not what is written inside text, and never changes userId or anonymousId.`)
  }

  const destinations: DestinationReport[] = (config.destinations ?? []).map((d, i) => {
    const where = `/destinations/${i}`
    const plugin = typeof d.type === 'object' ? d.type : plugins.get(d.type)
    if (!plugin) {
      throw new ConfigError('CONFIG_UNKNOWN_PLUGIN', [{ path: `${where}/type`, message: `no destination plugin "${String(d.type)}" (built-in: ${builtinDestinations.map((p) => p.name).join(', ')}; pass others in options.plugins)` }])
    }
    const state = cloneState(source)
    const report: DestinationReport = {
      name: d.name,
      type: plugin.name,
      enabled: d.enabled !== false,
      consent: consentSummary(d, plugin, config, []),
      shape: 'the whole event',
      classes: emptyClasses(),
      notes: [],
    }
    if (d.enabled === false) {
      report.notes.push('disabled (enabled: false): receives nothing')
      return report
    }
    if (source.droppedBy) {
      report.notes.push(`${source.droppedBy} drops every event`)
      return report
    }
    const off = state.disabled.get(d.name) ?? state.disabled.get(plugin.name)
    if (off) {
      report.notes.push(`${off} switches it off for every event`)
      return report
    }
    applyPolicies(d.policies, state, { where: `${where}/policies`, scope: 'destination' })
    report.consent = consentSummary(d, plugin, config, state.requires)
    report.notes.push(...state.notes.filter((n) => !source.notes.includes(n)))
    if (state.droppedBy) {
      report.notes.push(`${state.droppedBy} drops every event`)
      return report
    }
    applyFieldGates(state, config.consent?.fields)
    if (config.pii && !(config.pii.allow ?? []).includes(d.name)) applySweep(state, config.pii)
    // The router refuses a mapping that does not compile: so does explain.
    compileDestinationMapping(
      { name: d.name, ...(d.mapping !== undefined ? { mapping: d.mapping } : {}), ...(d.mappingFile !== undefined ? { mappingFile: isAbsolute(d.mappingFile) ? d.mappingFile : resolvePath(baseDir, d.mappingFile) } : {}) },
      plugin,
      where,
    )
    const m = mappingSource(d, plugin, baseDir)
    let flows: OutFlow[]
    if (m) {
      report.shape = m.origin
      flows = mappingFlows(m.source).flows
    } else {
      const w: VFlow = whole()
      flows = [{ ...w, line: 0, text: '' }]
    }
    if (plugin === metaCapi) report.notes.push('meta-capi hashes user_data em, ph, fn, ln, ge, db, ct, st, zp, country and external_id in send; client_ip_address, client_user_agent, fbp and fbc go as they are')
    else if (!builtinDestinations.includes(plugin)) report.notes.push(`"${plugin.name}" is not a built-in plugin: its send is taken to pass on everything it receives`)
    const cells = resolve(flows, state, plugin, m ? m.origin : 'whole event')
    for (const c of DATA_CLASSES) report.classes[c] = verdictOf(cells[c])
    return report
  })

  const report: Report = { version: 1, classes: DATA_CLASSES, destinations, notes, deny: { rules, violations: [] } }
  report.deny.violations = checkDenyRules(report, rules)
  for (const r of unmatchedRules(report, rules)) notes.push(`deny rule "${r.text}" (${r.origin}) names no configured destination`)
  return report
}
