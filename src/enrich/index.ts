/**
 * Enrichment: what the router adds to an accepted event (device, OS and browser from the
 * user agent, the campaign from the page URL, the location from the IP), what it takes
 * away (the IP, masked or dropped) and whether it is a bot's — in place, synchronously,
 * before source policies, so policies and every destination see the result.
 *
 * Every step fills only what the event does not already carry: a client that sends its
 * own `context.device` or `context.campaign` keeps it.
 */
import { isIP } from 'node:net'
import { schemaIssues } from '../config.js'
import { ConfigError } from '../errors.js'
import type { FirstpartyEvent } from '../normalize/schema.js'
import { maskIp } from '../policy/pii.js'
import { isBotUserAgent } from './bots.js'
import { campaignFromQuery, queryOf } from './campaign.js'
import { checkGeoDatabase, openGeo, type GeoLookup } from './geo.js'
import { EnrichSchema, type EnrichOptions } from './schema.js'
import { UserAgentCache } from './user-agent.js'

export { EnrichSchema, type EnrichOptions } from './schema.js'
export { isBotUserAgent, isBotValue } from './bots.js'

/** `bot`: drop this event (`bots: 'drop'` and its user agent is a bot's); `keep`: route it. */
export type EnrichVerdict = 'keep' | 'bot'

export interface Enricher {
  /** Enrich the event in place. Synchronous; never throws on odd event data. */
  enrich(event: FirstpartyEvent): EnrichVerdict
  /**
   * Resolves once the geo database is open (at once without `geo`); rejects with a
   * ConfigError naming `/enrich/geo/database` when it cannot be read. Until then events
   * get no location.
   */
  readonly ready: Promise<void>
  /** Release the geo database. `enrich` keeps working, without geo. */
  close(): Promise<void>
}

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)
const absent = (v: unknown) => v === undefined || v === null || v === ''

/** `::ffff:192.0.2.1` → `192.0.2.1`: dual-stack sockets report IPv4 clients so. */
function unmapped(ip: string): string {
  return ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip
}

/** Put `values` into `context[key]`: a new object when there is none, else only its empty fields. */
function fill(context: Obj, key: string, values: Readonly<Record<string, string>>): void {
  const keys = Object.keys(values)
  if (keys.length === 0) return
  const current = context[key]
  if (absent(current)) {
    context[key] = { ...values }
    return
  }
  // A client value that is not an object (a string, an array) is the client's business.
  if (!isObject(current)) return
  for (const k of keys) if (absent(current[k])) current[k] = values[k]
}

/**
 * Create an enricher. Throws a ConfigError (paths under `where`) when the options are
 * wrong or the geo database is missing or is not a MaxMind DB.
 * @example
 * const enricher = createEnricher({ ip: 'mask', geo: { database: './GeoLite2-City.mmdb' } })
 * await enricher.ready
 * enricher.enrich(event)
 */
export function createEnricher(options: EnrichOptions = {}, where = '/enrich'): Enricher {
  const issues = schemaIssues(EnrichSchema, options, where)
  if (issues.length) throw new ConfigError('CONFIG_INVALID', issues, 'Invalid enrich options:')
  const parseUa = options.userAgent !== false
  const campaign = options.campaign !== false
  const ipMode = options.ip ?? 'keep'
  const bots = options.bots ?? 'flag'
  const cache = new UserAgentCache(1000)

  let geo: GeoLookup | undefined
  let closed = false
  let ready: Promise<void> = Promise.resolve()
  if (options.geo) {
    const pointer = `${where}/geo/database`
    checkGeoDatabase(options.geo.database, pointer)
    ready = openGeo(options.geo.database, options.geo.language, pointer).then((g) => {
      if (!closed) geo = g
    })
    // Whoever awaits `ready` gets the error; nobody awaiting it must not crash the process.
    ready.catch(() => {})
  }

  return {
    ready,
    enrich(event) {
      const context = event.context as Obj | undefined
      if (!isObject(context)) return 'keep'
      const ua = typeof context.userAgent === 'string' && context.userAgent !== '' ? context.userAgent : undefined
      if (ua !== undefined && (parseUa || bots !== 'off')) {
        const parsed = parseUa ? cache.parse(ua) : undefined
        const bot = parsed ? parsed.bot : isBotUserAgent(ua)
        if (bot && bots === 'drop') return 'bot'
        if (bot && bots === 'flag') context.bot = true
        if (parsed) {
          fill(context, 'device', parsed.device)
          fill(context, 'os', parsed.os)
          fill(context, 'browser', parsed.browser)
        }
      }
      if (campaign && absent(context.campaign) && isObject(context.page)) {
        const { url, search } = context.page
        const query = (typeof url === 'string' ? queryOf(url) : undefined) ??
          (typeof search === 'string' && search !== '' ? queryOf(search.startsWith('?') ? search : `?${search}`) : undefined)
        const found = query ? campaignFromQuery(query) : undefined
        if (found) context.campaign = found
      }
      const ip = typeof context.ip === 'string' ? unmapped(context.ip.trim()) : undefined
      // The lookup sees the whole address; masking comes after.
      if (geo && ip && absent(context.location)) {
        const found = geo.lookup(ip)
        if (found) {
          context.location = found.location
          if (found.timezone && absent(context.timezone)) context.timezone = found.timezone
        }
      }
      if (ipMode === 'mask' && ip !== undefined) context.ip = maskIp(ip)
      else if (ipMode === 'drop' && context.ip !== undefined) delete context.ip
      return 'keep'
    },
    async close() {
      closed = true
      geo = undefined
    },
  }
}
