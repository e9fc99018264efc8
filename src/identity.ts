/**
 * First-party identity: a middleware that gives every visitor a long-lived
 * `ajs_anonymous_id` cookie set by the server, in the format analytics.js reads, and
 * hands the same id to backend code (`req.firstparty.anonymousId`).
 *
 * Why from the server: Safari (ITP) and other browsers cap cookies written by script
 * (`document.cookie`) at 7 days, so analytics.js alone forgets a visitor who comes back
 * after a week. A cookie the server sets in an HTTP response is not capped that way;
 * refreshing it on each visit keeps it for `maxAgeDays` after the last one.
 *
 * The cookie format, from @segment/analytics-next (packages/browser/src/core/storage/
 * cookieStorage.ts and core/user/index.ts): the id is written with js-cookie as the
 * plain string, URL-encoded (`ajs_anonymous_id=4f9c…`), with `Path=/`, `SameSite=Lax`,
 * 365 days and `Domain` set to the top-most domain the browser accepts (`example.com`
 * on www.example.com). Reading, it tries `JSON.parse` on the decoded value first and
 * falls back to the raw string, because analytics.js 1.0 (analytics.js-core) stored
 * `JSON.stringify(id)`, i.e. `%224f9c…%22`. This module reads both and writes the plain
 * form, or refreshes a cookie in the form it found so the script that wrote it can
 * still read it.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConfigError } from './errors.js'

export const ANONYMOUS_ID_COOKIE = 'ajs_anonymous_id'
export const USER_ID_COOKIE = 'ajs_user_id'

/** What the identity middleware found or issued for a request. */
export interface FirstpartyIdentity {
  /** The visitor's anonymous id: from the `ajs_anonymous_id` cookie, or new. */
  anonymousId: string
  /**
   * The `ajs_user_id` cookie analytics.js keeps after `identify()`. The browser can
   * write anything there: it is a claim, not an authenticated user.
   */
  userId?: string
  /** The id was issued by this request (there was no valid cookie). */
  isNew: boolean
}

declare global {
  // Express's own augmentation point: `req.firstparty` is typed in Express handlers,
  // and nothing changes for code that does not use Express.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by firstparty's `identity()` middleware. */
      firstparty?: FirstpartyIdentity
    }
  }
}

export interface IdentityOptions {
  /**
   * Lifetime of the cookie after the last visit, in days. Browsers cap it at 400.
   * @default 365 (analytics.js's default)
   */
  maxAgeDays?: number
  /**
   * The cookie's Domain. Set it to the domain analytics.js uses — the top-most one the
   * browser accepts, `example.com` for www.example.com — so both write one cookie; with
   * no Domain the cookie is host-only and the browser may keep two of the same name.
   * @default none (host-only)
   * @example 'example.com'
   */
  domain?: string
  /** @default '/' */
  path?: string
  /**
   * Hide the cookie from scripts. analytics.js then cannot read it: pass the id to it
   * yourself (`analytics.setAnonymousId(id)` before the first event).
   * @default false
   */
  httpOnly?: boolean
  /**
   * Send the cookie over HTTPS only. `'auto'`: when the request came over HTTPS (Express's
   * `req.secure`, which honours its `trust proxy` setting, else the socket).
   * @default 'auto'
   */
  secure?: boolean | 'auto'
  /** `None` implies `Secure`. @default 'Lax' */
  sameSite?: 'Lax' | 'Strict' | 'None'
  /**
   * Set the cookie again on every response, so it expires `maxAgeDays` after the last
   * visit rather than the first.
   * @default true
   */
  refresh?: boolean
  /**
   * How a new cookie is written: `raw` as analytics-next writes it; `json` as
   * analytics.js 1.0 did (`%22id%22`), for sites still on the old snippet.
   * @default 'raw'
   */
  format?: 'raw' | 'json'
  /** Makes a new anonymous id. @default crypto.randomUUID */
  generateId?: () => string
}

/** Longest id accepted from a cookie. */
export const MAX_ID_LENGTH = 200
// Letters, digits and the punctuation ids and e-mails use. No white space, quotes,
// backslash, `;` `,` (cookie syntax) or `<` `>` `'` (ids end up in pages and scripts).
const ID_CHARS = /^[A-Za-z0-9_.~:@+=/!$*|#-]+$/
// Many cookies are fine; a header of thousands is an attack, not a browser.
const MAX_COOKIES = 200

/** Whether a value may be used as an id: 1 to 200 characters of the allowed set. */
export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && ID_CHARS.test(value)
}

/** A cookie value as analytics.js would read it; undefined when it is no usable id. */
export function decodeIdCookie(value: string): { id: string; format: 'raw' | 'json' } | undefined {
  if (value.length > MAX_ID_LENGTH * 3 + 6) return undefined
  let v = value
  if (v.includes('%')) {
    try {
      v = decodeURIComponent(v)
    } catch {
      return undefined
    }
  }
  // As analytics-next: JSON first, the raw text when that fails. A number is the id as
  // text (its getAndSync coerces so); null, booleans and objects are no id.
  let parsed: unknown
  try {
    parsed = JSON.parse(v)
  } catch {
    return isValidId(v) ? { id: v, format: 'raw' } : undefined
  }
  if (typeof parsed === 'number') v = String(parsed)
  else if (typeof parsed === 'string') v = parsed
  else return undefined
  return isValidId(v) ? { id: v, format: typeof parsed === 'string' ? 'json' : 'raw' } : undefined
}

/** The first usable value of each named cookie in a Cookie header. */
export function readIdCookies(header: string | string[] | undefined, names: readonly string[]): Map<string, { id: string; format: 'raw' | 'json' }> {
  const found = new Map<string, { id: string; format: 'raw' | 'json' }>()
  if (header === undefined) return found
  const text = Array.isArray(header) ? header.join('; ') : header
  let start = 0
  for (let n = 0; n < MAX_COOKIES && start < text.length; n++) {
    let end = text.indexOf(';', start)
    if (end === -1) end = text.length
    const pair = text.slice(start, end)
    start = end + 1
    const eq = pair.indexOf('=')
    if (eq === -1) continue
    const name = pair.slice(0, eq).trim()
    if (!names.includes(name) || found.has(name)) continue
    // A browser sends every cookie of that name that applies (host-only and domain
    // ones); the first usable one wins, a broken one does not hide a good one.
    const decoded = decodeIdCookie(pair.slice(eq + 1).trim())
    if (decoded) found.set(name, decoded)
  }
  return found
}

const DOMAIN = /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/
const PATH = /^\/[\x21-\x3A\x3C-\x7E]*$/

function invalid(option: string, message: string): never {
  throw new ConfigError('CONFIG_INVALID', [{ path: `/identity/${option}`, message }], 'Invalid identity() options:')
}

function isSecure(req: IncomingMessage): boolean {
  // Express defines `secure` from the protocol, honouring its `trust proxy` setting.
  const express = (req as { secure?: unknown }).secure
  if (typeof express === 'boolean') return express
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true
}

// One Set-Cookie per response, however many times the middleware runs on it.
const issued = new WeakSet<ServerResponse>()

/** Append a Set-Cookie header unless the response already sets this cookie or is under way. */
function setCookie(res: ServerResponse, name: string, cookie: string): boolean {
  if (issued.has(res) || res.headersSent) return false
  const prev = res.getHeader('Set-Cookie')
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)]
  if (list.some((c) => c.startsWith(`${name}=`))) return false
  try {
    res.setHeader('Set-Cookie', [...list, cookie])
  } catch {
    // Headers went out between the check and the call (a streaming host); the id stands.
    return false
  }
  issued.add(res)
  return true
}

/**
 * Express/Connect middleware — or any `(req, res, next)` host, `next` optional — that
 * reads the visitor's `ajs_anonymous_id` (and `ajs_user_id`) cookie, issues a new id
 * when there is none or it is unusable, refreshes the cookie, and sets `req.firstparty`.
 * Mount it on page routes (not static assets behind a shared cache: a cached
 * Set-Cookie would hand one id to everybody).
 * @example
 * app.use(identity({ domain: 'example.com' }))
 * app.post('/checkout', async (req, res) => {
 *   await router.track({ event: 'Order Completed', anonymousId: getAnonymousId(req) })
 * })
 */
export function identity(options: IdentityOptions = {}): (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void {
  const maxAgeDays = options.maxAgeDays ?? 365
  if (typeof maxAgeDays !== 'number' || !(maxAgeDays > 0) || maxAgeDays > 400) invalid('maxAgeDays', 'must be a number of days above 0 and at most 400 (browsers cap cookies at 400 days)')
  if (options.domain !== undefined && (typeof options.domain !== 'string' || options.domain.length > 253 || !DOMAIN.test(options.domain))) invalid('domain', 'must be a domain name such as example.com')
  const path = options.path ?? '/'
  if (typeof path !== 'string' || path.length > 1024 || !PATH.test(path)) invalid('path', 'must start with / and hold no ; or white space')
  const sameSite = options.sameSite ?? 'Lax'
  if (!['Lax', 'Strict', 'None'].includes(sameSite)) invalid('sameSite', 'must be Lax, Strict or None')
  const secure = options.secure ?? 'auto'
  if (secure !== 'auto' && typeof secure !== 'boolean') invalid('secure', "must be true, false or 'auto'")
  if (sameSite === 'None' && secure === false) invalid('secure', 'SameSite=None cookies must be Secure; browsers drop them otherwise')
  const format = options.format ?? 'raw'
  if (format !== 'raw' && format !== 'json') invalid('format', "must be 'raw' or 'json'")
  const generate = options.generateId ?? randomUUID
  if (typeof generate !== 'function') invalid('generateId', 'must be a function returning a new id')
  const maxAge = Math.round(maxAgeDays * 86_400)
  const attributes = `; Max-Age=${maxAge}; Path=${path}${options.domain ? `; Domain=${options.domain}` : ''}; SameSite=${sameSite}`
  const names = [ANONYMOUS_ID_COOKIE, USER_ID_COOKIE] as const

  return (req, res, next) => {
    try {
      const known = (req as { firstparty?: FirstpartyIdentity }).firstparty
      if (known === undefined) {
        const cookies = readIdCookies(req.headers.cookie, names)
        const anon = cookies.get(ANONYMOUS_ID_COOKIE)
        let id = anon?.id
        if (id === undefined) {
          id = generate()
          if (!isValidId(id)) throw new Error(`identity(): generateId returned ${JSON.stringify(id)}, which is not a valid id (1 to ${MAX_ID_LENGTH} of A-Z a-z 0-9 _ . ~ : @ + = / ! $ * | # -)`)
        }
        const user = cookies.get(USER_ID_COOKIE)?.id
        const found: FirstpartyIdentity = user === undefined ? { anonymousId: id, isNew: anon === undefined } : { anonymousId: id, userId: user, isNew: anon === undefined }
        ;(req as { firstparty?: FirstpartyIdentity }).firstparty = found
        if (anon === undefined || options.refresh !== false) {
          const value = encodeURIComponent((anon?.format ?? format) === 'json' ? JSON.stringify(id) : id)
          const flags = (secure === true || sameSite === 'None' || (secure === 'auto' && isSecure(req)) ? '; Secure' : '') + (options.httpOnly ? '; HttpOnly' : '')
          setCookie(res, ANONYMOUS_ID_COOKIE, `${ANONYMOUS_ID_COOKIE}=${value}${attributes}; Expires=${new Date(Date.now() + maxAge * 1000).toUTCString()}${flags}`)
        }
      }
    } catch (err) {
      if (next) return next(err)
      throw err
    }
    next?.()
  }
}

/**
 * The visitor's anonymous id: what `identity()` found or issued for this request, else
 * the request's `ajs_anonymous_id` cookie (read only, nothing is set); undefined when
 * there is neither.
 */
export function getAnonymousId(req: IncomingMessage): string | undefined {
  const known = (req as { firstparty?: FirstpartyIdentity }).firstparty
  if (known !== undefined) return known.anonymousId
  return readIdCookies(req.headers.cookie, [ANONYMOUS_ID_COOKIE]).get(ANONYMOUS_ID_COOKIE)?.id
}
