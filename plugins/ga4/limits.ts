/**
 * GA4's Measurement Protocol limits, checked before sending: GA4 answers 2xx even for
 * an event it then drops, so a limit broken here would otherwise lose data silently.
 * Sources: the Measurement Protocol reference ("Limitations", "Reserved names") and
 * Google Analytics' event collection limits.
 */

export const MAX_EVENTS_PER_REQUEST = 25
export const MAX_PARAMS_PER_EVENT = 25
export const MAX_NAME_LENGTH = 40
export const MAX_PARAM_VALUE_LENGTH = 100
export const MAX_PARAM_VALUE_LENGTH_360 = 500
/** Parameters GA4 lets run longer than the standard 100 characters. */
export const LONG_PARAMS: Readonly<Record<string, number>> = { page_location: 1000, page_referrer: 420, page_title: 300 }
export const MAX_USER_PROPERTIES = 25
export const MAX_USER_PROPERTY_NAME_LENGTH = 24
export const MAX_USER_PROPERTY_VALUE_LENGTH = 36
export const MAX_USER_ID_LENGTH = 256
/** The JSON body must be smaller than 130 kB. */
export const MAX_BODY_BYTES = 130_000

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/

export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set([
  'ad_activeview', 'ad_click', 'ad_exposure', 'ad_impression', 'ad_query', 'ad_reward', 'adunit_exposure',
  'app_background', 'app_clear_data', 'app_exception', 'app_install', 'app_remove', 'app_store_refund',
  'app_update', 'app_upgrade', 'dynamic_link_app_open', 'dynamic_link_app_update', 'dynamic_link_first_open',
  'error', 'first_open', 'first_visit', 'in_app_purchase', 'notification_dismiss', 'notification_foreground',
  'notification_open', 'notification_receive', 'notification_send', 'os_update', 'screen_view', 'session_start',
  'user_engagement',
])
export const RESERVED_EVENT_PREFIXES = ['_', 'firebase_', 'ga_', 'google_', 'gtag.']
export const RESERVED_PARAM_NAMES: ReadonlySet<string> = new Set(['firebase_conversion'])
export const RESERVED_PARAM_PREFIXES = ['_', 'firebase_', 'ga_', 'google_']
export const RESERVED_USER_PROPERTY_NAMES: ReadonlySet<string> = new Set([
  'first_open_time', 'first_visit_time', 'last_deep_link_referrer', 'user_id', 'first_open_after_install',
])
export const RESERVED_USER_PROPERTY_PREFIXES = ['_', 'firebase_', 'ga_', 'google_']

/** The mapped payload `send` receives: one Measurement Protocol request body. */
export interface MpBody {
  client_id?: unknown
  user_id?: unknown
  timestamp_micros?: unknown
  user_properties?: unknown
  events?: unknown
  [key: string]: unknown
}

export interface MpEvent {
  name: string
  params?: Record<string, unknown>
  timestamp_micros?: number
}

function checkName(what: string, name: unknown, max: number, prefixes: readonly string[], reserved: ReadonlySet<string>): string | undefined {
  if (typeof name !== 'string' || name === '') return `${what} must be a non-empty string`
  const prefix = prefixes.find((p) => name.startsWith(p))
  if (prefix) return `${what} "${name}" starts with the reserved prefix "${prefix}"`
  if (reserved.has(name)) return `${what} "${name}" is reserved by GA4`
  if (name.length > max) return `${what} "${name}" is ${name.length} characters; GA4 allows ${max}`
  if (!NAME.test(name)) return `${what} "${name}" must start with a letter and hold only letters, digits and underscores`
  return undefined
}

function checkScalar(what: string, value: unknown, max: number): string | undefined {
  if (typeof value === 'string') return value.length > max ? `${what} is ${value.length} characters; GA4 allows ${max}` : undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${what} must be a finite number`
  if (typeof value === 'boolean') return undefined
  return `${what} must be a string, number or boolean (got ${Array.isArray(value) ? 'an array' : typeof value})`
}

/**
 * Checks one mapped body against GA4's limits. Returns the first problem as a sentence
 * naming the field, or undefined when GA4 will take it.
 */
export function checkBody(body: MpBody, options: { ga360: boolean }): string | undefined {
  const valueMax = options.ga360 ? MAX_PARAM_VALUE_LENGTH_360 : MAX_PARAM_VALUE_LENGTH
  if (typeof body.client_id !== 'string' || body.client_id === '') {
    return 'client_id is missing: the event has no _ga cookie and no anonymousId (GA4 needs one per request)'
  }
  if (body.user_id !== undefined && (typeof body.user_id !== 'string' || body.user_id.length > MAX_USER_ID_LENGTH)) {
    return `user_id must be a string of at most ${MAX_USER_ID_LENGTH} characters`
  }
  if (body.timestamp_micros !== undefined && (typeof body.timestamp_micros !== 'number' || !Number.isInteger(body.timestamp_micros))) {
    return 'timestamp_micros must be an integer (microseconds since the epoch)'
  }
  if (!Array.isArray(body.events) || body.events.length === 0) return 'events must be a non-empty array'
  if (body.events.length > MAX_EVENTS_PER_REQUEST) return `${body.events.length} events in one body; GA4 allows ${MAX_EVENTS_PER_REQUEST}`
  for (const [i, e] of (body.events as unknown[]).entries()) {
    const at = `events[${i}]`
    if (!e || typeof e !== 'object') return `${at} must be an object`
    const ev = e as { name?: unknown; params?: unknown }
    const nameProblem = checkName(`${at}.name`, ev.name, MAX_NAME_LENGTH, RESERVED_EVENT_PREFIXES, RESERVED_EVENT_NAMES)
    if (nameProblem) return nameProblem
    if (ev.params === undefined) continue
    if (!ev.params || typeof ev.params !== 'object' || Array.isArray(ev.params)) return `${at}.params must be an object`
    const params = Object.entries(ev.params as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined)
    if (params.length > MAX_PARAMS_PER_EVENT) return `${at} ("${String(ev.name)}") has ${params.length} parameters; GA4 allows ${MAX_PARAMS_PER_EVENT}`
    for (const [key, value] of params) {
      const p = `${at}.params.${key}`
      const problem = checkName(`parameter name ${p}`, key, MAX_NAME_LENGTH, RESERVED_PARAM_PREFIXES, RESERVED_PARAM_NAMES)
      if (problem) return problem
      if (key === 'items') {
        if (!Array.isArray(value)) return `${p} must be an array of items`
        for (const [j, item] of value.entries()) {
          if (!item || typeof item !== 'object' || Array.isArray(item)) return `${p}[${j}] must be an object`
          for (const [ik, iv] of Object.entries(item as Record<string, unknown>)) {
            if (iv === null || iv === undefined) continue
            const ip = `${p}[${j}].${ik}`
            const itemProblem = checkName(`item parameter name ${ip}`, ik, MAX_NAME_LENGTH, RESERVED_PARAM_PREFIXES, RESERVED_PARAM_NAMES) ?? checkScalar(ip, iv, valueMax)
            if (itemProblem) return itemProblem
          }
        }
        continue
      }
      const valueProblem = checkScalar(p, value, LONG_PARAMS[key] ?? valueMax)
      if (valueProblem) return valueProblem
    }
  }
  if (body.user_properties !== undefined) {
    const up = body.user_properties
    if (!up || typeof up !== 'object' || Array.isArray(up)) return 'user_properties must be an object'
    const entries = Object.entries(up as Record<string, unknown>)
    if (entries.length > MAX_USER_PROPERTIES) return `${entries.length} user properties; GA4 allows ${MAX_USER_PROPERTIES}`
    for (const [key, v] of entries) {
      const p = `user_properties.${key}`
      const problem = checkName(`user property name ${p}`, key, MAX_USER_PROPERTY_NAME_LENGTH, RESERVED_USER_PROPERTY_PREFIXES, RESERVED_USER_PROPERTY_NAMES)
      if (problem) return problem
      if (!v || typeof v !== 'object' || !('value' in v)) return `${p} must be { value: ... }`
      const valueProblem = checkScalar(`${p}.value`, (v as { value: unknown }).value, MAX_USER_PROPERTY_VALUE_LENGTH)
      if (valueProblem) return valueProblem
    }
  }
  return undefined
}
