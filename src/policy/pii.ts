/**
 * Personal-data detection over keys and values. Deliberately conservative on values
 * (an order number must not look like a phone) and generous on keys (a field called
 * `email` holds an email even when this one is malformed).
 */
import { isIP } from 'node:net'
import * as nodeCrypto from 'node:crypto'

export const PII_CLASSES = ['email', 'phone', 'ip', 'card', 'national_id', 'address', 'name'] as const
export type PiiClass = (typeof PII_CLASSES)[number]

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}\.[A-Za-z]{2,63}$/
const EMAIL_KEY = /(^|[_.-])e?-?mail(_?address)?$|^email/i
const PHONE_KEY = /phone|mobile|^tel$|telephone|msisdn|^fax$/i
const PHONE_VALUE = /^\+[1-9][\d\s().-]{6,20}$/
const IP_KEY = /^(ip|ip_?address|client_?ip|remote_?addr)$/i
const CARD_VALUE = /^(?:\d[ -]?){12,18}\d$/
const SSN = /^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$/
const NATIONAL_ID_KEY = /(^|_)(ssn|sin|nino|national_?id|passport(_?number)?|tax_?id|tin|personnummer|bsn|nif|dni|aadhaar)$/i
const ADDRESS_KEY = /(^|_)(address|street|street_?address|address_?line_?\d|postal_?code|postcode|zip|zip_?code|city|state|country)$/i
const NAME_KEY = /^(first_?name|last_?name|full_?name|middle_?name|given_?name|family_?name|surname|firstname|lastname|fn|ln)$/i
const CARD_KEY = /(card_?number|cc_?number|credit_?card|pan)$/i

/** Luhn checksum, for card numbers. */
export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return digits.length >= 13 && sum % 10 === 0
}

/**
 * The class of personal data a field holds, from its key and value. `parentKey` lets
 * `traits.name` (a person) differ from `properties.name` (a product or page).
 */
export function classify(key: string, value: unknown, parentKey?: string): PiiClass | undefined {
  if (value === null || value === undefined || typeof value === 'object' || typeof value === 'boolean') return undefined
  const s = typeof value === 'string' ? value.trim() : String(value)
  if (s === '') return undefined
  if (EMAIL_KEY.test(key) || EMAIL.test(s)) return 'email'
  if (IP_KEY.test(key) || (s.length <= 45 && isIP(s) !== 0)) return 'ip'
  if (CARD_KEY.test(key)) return 'card'
  if (CARD_VALUE.test(s) && luhn(s.replace(/[ -]/g, ''))) return 'card'
  if (NATIONAL_ID_KEY.test(key) || SSN.test(s)) return 'national_id'
  if (PHONE_KEY.test(key) || PHONE_VALUE.test(s)) return 'phone'
  if (NAME_KEY.test(key) || (key === 'name' && parentKey === 'traits')) return 'name'
  if (ADDRESS_KEY.test(key) && typeof value === 'string') return 'address'
  return undefined
}

export interface PiiFinding {
  path: string
  class: PiiClass
}

// Fields of the event envelope that are identifiers or metadata, never scanned.
const ENVELOPE = new Set(['type', 'event', 'messageId', 'timestamp', 'originalTimestamp', 'sentAt', 'receivedAt', 'version', 'channel', 'integrations', 'writeKey', 'userId', 'anonymousId', 'previousId', 'groupId'])

/** A finding with the place it was found, for acting on it without re-parsing its path. */
export interface PiiLocation extends PiiFinding {
  parent: Record<string, unknown> | unknown[]
  key: string
}

/** Every field of the event that holds personal data (depth-bounded). */
export function detectPii(event: Record<string, unknown>, maxDepth = 16): PiiFinding[] {
  return locatePii(event, maxDepth).map(({ path, class: c }) => ({ path, class: c }))
}

/**
 * `detectPii` with each finding's parent and key, in document order. Keys are data
 * (`""`, `"a.b"`, `"*"`), so the readable `path` is not safe to compile back into a
 * path: act on `parent[key]` instead.
 */
export function locatePii(event: Record<string, unknown>, maxDepth = 16): PiiLocation[] {
  const out: PiiLocation[] = []
  // `key` is the field's name (an array item's is its array's); `own` is its key in `parent`.
  const walk = (node: unknown, at: string, key: string, parentKey: string | undefined, depth: number, parent: Record<string, unknown> | unknown[], own: string) => {
    if (depth > maxDepth) return
    if (node !== null && typeof node === 'object') {
      if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${at}[${i}]`, key, parentKey, depth + 1, node, String(i)))
      else {
        // Address objects (`traits.address.street`) are addresses whatever their keys.
        if (key === 'address') {
          for (const k of Object.keys(node)) {
            const v = (node as Record<string, unknown>)[k]
            if (v !== null && typeof v !== 'object' && v !== '') out.push({ path: `${at}.${k}`, class: 'address', parent: node as Record<string, unknown>, key: k })
          }
          return
        }
        for (const k of Object.keys(node)) walk((node as Record<string, unknown>)[k], at ? `${at}.${k}` : k, k, key, depth + 1, node as Record<string, unknown>, k)
      }
      return
    }
    const c = classify(key, node, parentKey)
    if (c) out.push({ path: at, class: c, parent, key: own })
  }
  for (const k of Object.keys(event)) {
    if (ENVELOPE.has(k)) continue
    walk(event[k], k, k, undefined, 0, event, k)
  }
  return out
}

// crypto.hash (Node ≥ 20.12) skips the Hash object: about twice as fast for short strings.
const nativeHash = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash

/** SHA-256 of a string, hex. */
export const sha256hex: (s: string) => string = nativeHash
  ? (s) => nativeHash('sha256', s, 'hex')
  : (s) => nodeCrypto.createHash('sha256').update(s).digest('hex')

/** Normalize before hashing, the way ad platforms match: e-mail trimmed and lower-cased, phone as E.164 digits. */
export function normalizeForHash(value: unknown, as: PiiClass | 'auto' | 'text' = 'auto', key = ''): string {
  const s = String(value).trim()
  const kind = as === 'auto' ? classify(key, s) ?? 'text' : as
  if (kind === 'email') return s.toLowerCase()
  if (kind === 'phone') return s.replace(/\D/g, '').replace(/^00/, '')
  return s.toLowerCase()
}

const HEX64 = /^[a-fA-F0-9]{64}$/

/** SHA-256 (hex) of the normalized value; a value that already is a SHA-256 hex digest is kept. */
export function hashValue(value: unknown, as: PiiClass | 'auto' | 'text' = 'auto', key = ''): unknown {
  if (value === null || value === undefined || value === '') return value
  if (typeof value === 'object') return value
  if (typeof value === 'string' && HEX64.test(value)) return value
  return sha256hex(normalizeForHash(value, as, key))
}

/** IPv4 to its /24, IPv6 to its /48; anything else unchanged. */
export function maskIp(value: unknown): unknown {
  if (typeof value !== 'string') return value
  const v = value.trim()
  const family = isIP(v)
  if (family === 4) return v.split('.').slice(0, 3).join('.') + '.0'
  if (family === 6) {
    const [head] = v.split('::')
    const groups = head!.split(':').filter((g) => g !== '')
    const full = v.includes('::') ? groups : v.split(':')
    return full.slice(0, 3).concat(full.length < 3 ? Array(3 - full.length).fill('0') : []).join(':') + '::'
  }
  return value
}

/** Keep `keepStart` and `keepEnd` characters, star the rest (at least 3 stars). */
export function maskString(value: unknown, keepStart = 1, keepEnd = 0): unknown {
  if (value === null || value === undefined || typeof value === 'object') return value
  const s = String(value)
  if (isIP(s)) return maskIp(s)
  const start = s.slice(0, Math.min(keepStart, s.length))
  const end = keepEnd > 0 ? s.slice(Math.max(start.length, s.length - keepEnd)) : ''
  return start + '*'.repeat(Math.max(3, s.length - start.length - end.length)) + end
}
