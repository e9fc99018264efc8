/**
 * The `enrich` block of the configuration: what the router adds to (or removes from)
 * every accepted event before source policies run. Kept apart from `index.ts` so that
 * `config.ts` can import it without loading ua-parser-js or isbot.
 */
import Type, { type Static } from 'typebox'

export const EnrichSchema = Type.Object({
  /**
   * Parse `context.userAgent` (ua-parser-js 1.x) into `context.device` (`type`,
   * `manufacturer`, `model`), `context.os` (`name`, `version`) and `context.browser`
   * (`name`, `version`). Only fields the client did not send are filled.
   * @default true
   */
  userAgent: Type.Optional(Type.Boolean({ description: 'Fill context.device/os/browser from context.userAgent (default true).' })),
  /**
   * Read `utm_*` from `context.page.search` or `context.page.url` into `context.campaign`
   * as analytics.js does (`utm_campaign` → `name`), when the event has no campaign.
   * @default true
   */
  campaign: Type.Optional(Type.Boolean({ description: 'Fill context.campaign from utm_* in the page URL (default true).' })),
  /**
   * What to do with `context.ip` after the geo lookup (which always sees the full
   * address): `keep`; `mask` to the /24 (IPv4) or /48 (IPv6) network; `drop` removes it.
   * @default 'keep'
   */
  ip: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('mask'), Type.Literal('drop')], { description: "keep | mask (IPv4 /24, IPv6 /48) | drop (default keep)." })),
  /**
   * Look `context.ip` up in a MaxMind database (GeoLite2/GeoIP2 City or Country, .mmdb)
   * and fill `context.location` when the event has none. Needs the optional `maxmind`
   * package. A relative path in a config file is relative to that file.
   * @example { database: '/var/lib/GeoIP/GeoLite2-City.mmdb' }
   */
  geo: Type.Optional(Type.Object({
    /** Path of the .mmdb file. */
    database: Type.String({ minLength: 1, description: 'Path of a MaxMind .mmdb file (City or Country).' }),
    /** Language of the place names, one of the database's `languages`. @default 'en' */
    language: Type.Optional(Type.String({ minLength: 2, maxLength: 16, description: "Language of place names (default 'en')." })),
  }, { additionalProperties: false })),
  /**
   * Bots (isbot on `context.userAgent`): `flag` sets `context.bot: true`; `drop` drops the
   * event before any policy (counted in `stats().bots`); `off` does neither. A policy can
   * also decide with the `is_bot` operation.
   * @default 'flag'
   */
  bots: Type.Optional(Type.Union([Type.Literal('flag'), Type.Literal('drop'), Type.Literal('off')], { description: 'flag (context.bot = true) | drop | off (default flag).' })),
}, { additionalProperties: false })

export type EnrichOptions = Static<typeof EnrichSchema>
