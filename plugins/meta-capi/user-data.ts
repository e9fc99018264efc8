/**
 * Meta's customer-information rules: which `user_data` fields are hashed, how each is
 * normalized first, and which are sent as they are.
 * https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 *
 * The default mapping already sends these fields normalized and hashed; `send` runs
 * every value through `hashUserData` anyway, so a custom mapping that passes a raw
 * email or phone number never sends it in clear. A value that already is a SHA-256
 * hex digest is left alone: nothing is hashed twice.
 */
import { createHash } from 'node:crypto'

const SHA256_HEX = /^[a-f0-9]{64}$/

/** Fields Meta requires hashed (SHA-256 of the normalized value). */
export const HASHED_FIELDS = ['em', 'ph', 'fn', 'ln', 'ge', 'db', 'ct', 'st', 'zp', 'country', 'external_id'] as const
export type HashedField = (typeof HASHED_FIELDS)[number]

/** Fields sent as they are (Meta must not receive them hashed). */
export const PLAIN_FIELDS = ['client_ip_address', 'client_user_agent', 'fbc', 'fbp', 'subscription_id', 'fb_login_id', 'lead_id', 'anon_id', 'madid', 'page_id', 'page_scoped_user_id', 'ctwa_clid', 'ig_account_id', 'ig_sid'] as const

const PUNCTUATION = /[\p{P}\p{S}]/gu

/** Normalize one raw value the way Meta says for its field; '' when nothing usable is left. */
export function normalizeField(field: HashedField, raw: string, ctx: { country?: string } = {}): string {
  const v = raw.trim().toLowerCase()
  switch (field) {
    case 'em':
      return v
    case 'ph': {
      // Digits only, with the country code, without leading zeros ("00" international prefix, trunk 0).
      return v.replace(/\D/g, '').replace(/^0+/, '')
    }
    case 'fn':
    case 'ln':
      return v.replace(PUNCTUATION, '').replace(/\s+/g, ' ').trim()
    case 'ge':
      return v.startsWith('f') ? 'f' : v.startsWith('m') ? 'm' : ''
    case 'db': {
      const digits = v.replace(/\D/g, '')
      return /^\d{8}$/.test(digits) ? digits : ''
    }
    case 'ct':
    case 'st':
      return v.replace(PUNCTUATION, '').replace(/\s+/g, '')
    case 'zp': {
      const z = v.replace(/[\s-]/g, '')
      return ctx.country === 'us' ? z.slice(0, 5) : z
    }
    case 'country':
      return /^[a-z]{2}$/.test(v) ? v : ''
    case 'external_id':
      return raw.trim()
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

function hashOne(field: HashedField, value: unknown, ctx: { country?: string }): string | undefined {
  if (typeof value === 'number') value = String(value)
  if (typeof value !== 'string' || value.trim() === '') return undefined
  if (SHA256_HEX.test(value)) return value
  const n = normalizeField(field, value, ctx)
  return n === '' ? undefined : sha256(n)
}

/**
 * `user_data` as Meta must receive it: hashed fields normalized and hashed (arrays kept
 * as arrays), plain fields as they are, empty values and empty arrays left out.
 */
export function hashUserData(userData: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const rawCountry = typeof userData.country === 'string' && !SHA256_HEX.test(userData.country) ? userData.country.trim().toLowerCase() : undefined
  const ctx = rawCountry ? { country: rawCountry } : {}
  for (const [key, value] of Object.entries(userData)) {
    if (value === null || value === undefined) continue
    if ((HASHED_FIELDS as readonly string[]).includes(key)) {
      const field = key as HashedField
      if (Array.isArray(value)) {
        const hashed = [...new Set(value.map((v) => hashOne(field, v, ctx)).filter((v): v is string => v !== undefined))]
        if (hashed.length) out[key] = hashed
      } else {
        const h = hashOne(field, value, ctx)
        if (h !== undefined) out[key] = h
      }
      continue
    }
    if (typeof value === 'string' && value === '') continue
    if (Array.isArray(value) && value.length === 0) continue
    out[key] = value
  }
  return out
}
