/**
 * Deny rules: `<classes>:<treatments> -> <destinations>`, e.g. `email:raw -> *`,
 * `email,phone:any -> ads-*`, `*:raw -> ga4, meta`. A rule matches when explain finds a
 * flow — certain or possible — of one of its classes, in one of its treatments, to one
 * of its destinations.
 */
import { ConfigError } from '../errors.js'
import { DATA_CLASSES, TREATMENTS, type DataClass, type DenyRule, type DenyViolation, type Report, type Treatment } from './types.js'

const CLASS_ALIASES: Record<string, DataClass> = {
  email: 'email', emails: 'email', phone: 'phone', phones: 'phone', ip: 'ip', ips: 'ip', name: 'name', names: 'name',
  address: 'address', addresses: 'address', user_id: 'user_id', user_ids: 'user_id', userid: 'user_id', ids: 'user_id',
  free_text: 'free_text', 'free-text': 'free_text', freetext: 'free_text', text: 'free_text',
}

function fail(text: string, path: string, at: number, message: string): never {
  const caret = `${' '.repeat(at)}^`
  throw new ConfigError('CONFIG_DENY_RULE', [{ path, message: `character ${at + 1}: ${message}\n      ${text}\n      ${caret}` }], 'Invalid deny rule (<class>:<raw|hashed|masked|any> -> <destination>):')
}

/** A list `a, b ,c` from `start` to `end` of `text`: items with their offsets. */
function items(text: string, start: number, end: number): Array<{ value: string; at: number }> {
  const out: Array<{ value: string; at: number }> = []
  let from = start
  for (let i = start; i <= end; i++) {
    if (i === end || text[i] === ',') {
      const raw = text.slice(from, i)
      const lead = raw.length - raw.trimStart().length
      out.push({ value: raw.trim(), at: raw.trim() === '' ? from : from + lead })
      from = i + 1
    }
  }
  return out
}

/**
 * Parse one rule. `path` names where it came from in errors: `/privacy/deny/0` for the
 * config, `--deny` for the command line. Throws ConfigError CONFIG_DENY_RULE naming
 * the character.
 */
export function parseDenyRule(text: string, path: string): DenyRule {
  if (typeof text !== 'string' || text.trim() === '') fail(String(text ?? ''), path, 0, 'a rule is text like "email:raw -> *"')
  const arrow = text.indexOf('->')
  if (arrow === -1) fail(text, path, text.length, 'expected "->" followed by destinations, as in "email:raw -> *"')
  if (text.indexOf('->', arrow + 2) !== -1) fail(text, path, text.indexOf('->', arrow + 2), 'only one "->" per rule')
  const colon = text.indexOf(':')
  if (colon === -1 || colon > arrow) fail(text, path, Math.min(arrow, text.length), 'expected ":" between the classes and the treatments, as in "email:raw"')
  const classes: DataClass[] = []
  let anyClass = false
  for (const it of items(text, 0, colon)) {
    if (it.value === '') fail(text, path, it.at, 'expected a class of personal data')
    if (it.value === '*') anyClass = true
    else {
      const c = CLASS_ALIASES[it.value.toLowerCase()]
      if (!c) fail(text, path, it.at, `unknown class "${it.value}" (${DATA_CLASSES.join(', ')} or *)`)
      if (!classes.includes(c)) classes.push(c)
    }
  }
  const treatments: Treatment[] = []
  let anyTreatment = false
  for (const it of items(text, colon + 1, arrow)) {
    const v = it.value.toLowerCase()
    if (v === '') fail(text, path, it.at, 'expected a treatment: raw, hashed, masked or any')
    if (v === 'any' || v === '*') anyTreatment = true
    else if ((TREATMENTS as readonly string[]).includes(v)) {
      if (!treatments.includes(v as Treatment)) treatments.push(v as Treatment)
    } else fail(text, path, it.at, `unknown treatment "${it.value}" (raw, hashed, masked or any)`)
  }
  const destinations: string[] = []
  let anyDestination = false
  for (const it of items(text, arrow + 2, text.length)) {
    if (it.value === '') fail(text, path, it.at, 'expected a destination name or *')
    if (it.value === '*') anyDestination = true
    else if (!/^[A-Za-z0-9_. *-]+$/.test(it.value)) fail(text, path, it.at, `"${it.value}" is not a destination name (letters, digits, _ . - space, * as a wildcard)`)
    else destinations.push(it.value)
  }
  return {
    text: text.trim(),
    classes: anyClass ? '*' : classes,
    treatments: anyTreatment ? 'any' : treatments,
    destinations: anyDestination ? '*' : destinations,
    origin: path,
  }
}

function destinationMatches(rule: DenyRule, name: string): boolean {
  if (rule.destinations === '*') return true
  return rule.destinations.some((d) => {
    if (!d.includes('*')) return d === name
    const re = new RegExp(`^${d.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`)
    return re.test(name)
  })
}

/** Every (rule, destination, class, treatment) a report allows and a rule forbids. */
export function checkDenyRules(report: Report, rules: DenyRule[]): DenyViolation[] {
  const out: DenyViolation[] = []
  for (const rule of rules) {
    for (const d of report.destinations) {
      if (!d.enabled || !destinationMatches(rule, d.name)) continue
      for (const c of report.classes) {
        if (rule.classes !== '*' && !rule.classes.includes(c)) continue
        const cell = d.classes[c]
        for (const t of cell.treatments) {
          if (rule.treatments !== 'any' && !rule.treatments.includes(t)) continue
          const flows = cell.flows.filter((f) => f.treatment === t)
          const first = flows.find((f) => f.certain) ?? flows[0]!
          out.push({ rule: rule.text, origin: rule.origin, destination: d.name, class: c, treatment: t, certain: flows.some((f) => f.certain), from: first.from, reasons: first.reasons })
        }
      }
    }
  }
  return out
}

/** Rules whose destinations name none of the configured ones (a typo, or another environment's). */
export function unmatchedRules(report: Report, rules: DenyRule[]): DenyRule[] {
  return rules.filter((r) => r.destinations !== '*' && !report.destinations.some((d) => destinationMatches(r, d.name)))
}
