/**
 * IP geolocation from a MaxMind DB file (GeoLite2 or GeoIP2, City or Country). The
 * `maxmind` package is an optional dependency, imported only when a database is
 * configured. Opening is asynchronous (the file is read into memory); lookups are
 * synchronous, so they stay on the event's hot path.
 *
 * What can be checked without reading the whole file is checked at once, so a wrong
 * path stops `createRouter` with a ConfigError: the file exists, and its tail holds the
 * metadata marker `\xAB\xCD\xEFMaxMind.com` that every MaxMind DB ends with (a
 * GeoLite2 `.tar.gz` download or a legacy `.dat` file does not).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIP } from 'node:net'
import type { CityResponse, Reader } from 'maxmind'
import { ConfigError } from '../errors.js'

const MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex')
// The spec caps the metadata section, marker included, at 128 KiB.
const METADATA_MAX = 128 * 1024

function fail(path: string, message: string): never {
  throw new ConfigError('CONFIG_GEO_DATABASE', [{ path, message }])
}

/** The synchronous part: the package is installed, and the file looks like a MaxMind DB. */
export function checkGeoDatabase(file: string, pointer = '/enrich/geo/database'): void {
  try {
    createRequire(import.meta.url).resolve('maxmind')
  } catch {
    fail(pointer, 'geo lookup needs the optional package "maxmind" (npm install maxmind@5)')
  }
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    fail(pointer, `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) fail(pointer, `${file} is not a file`)
    const length = Math.min(stat.size, METADATA_MAX)
    const tail = Buffer.alloc(length)
    readSync(fd, tail, 0, length, stat.size - length)
    if (tail.lastIndexOf(MARKER) === -1) {
      const head = Buffer.alloc(2)
      readSync(fd, head, 0, 2, 0)
      const gzip = head[0] === 0x1f && head[1] === 0x8b
      fail(pointer, `${file} is not a MaxMind DB (.mmdb) file${gzip ? ': it is gzip-compressed; extract the .mmdb from the download first' : ''}`)
    }
  } finally {
    closeSync(fd)
  }
}

/** A geo record in Segment's `context.location` shape, plus the IANA time zone. */
export interface GeoResult {
  location: Record<string, string | number>
  timezone?: string
}

export interface GeoLookup {
  lookup(ip: string): GeoResult | undefined
}


/** Open the database (after `checkGeoDatabase`). Rejects with a ConfigError naming `/enrich/geo/database`. */
export async function openGeo(file: string, language = 'en', pointer = '/enrich/geo/database'): Promise<GeoLookup> {
  let maxmind: typeof import('maxmind')['default']
  try {
    maxmind = (await import('maxmind')).default
  } catch (err) {
    fail(pointer, `geo lookup needs the optional package "maxmind" (npm install maxmind@5): ${(err as Error).message}`)
  }
  let reader: Reader<CityResponse>
  try {
    reader = await maxmind.open<CityResponse>(file, { cache: { max: 10_000 } })
  } catch (err) {
    fail(pointer, `cannot read ${file} as a MaxMind DB: ${(err as Error).message}`)
  }
  const type = String(reader.metadata.databaseType)
  if (!/city|country/i.test(type)) fail(pointer, `${file} is a "${type}" database; geo needs a City or Country database (GeoLite2-City.mmdb)`)
  const name = (names: object | undefined): unknown => (names as Record<string, unknown> | undefined)?.[language] ?? (names as Record<string, unknown> | undefined)?.en
  return {
    lookup(ip) {
      if (isIP(ip) === 0) return undefined
      let r: CityResponse | null
      try {
        r = reader.get(ip)
      } catch {
        return undefined
      }
      if (!r) return undefined
      const location: Record<string, string | number> = {}
      const put = (k: string, v: unknown) => {
        if ((typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v))) location[k] = v
      }
      put('city', name(r.city?.names))
      put('country', name(r.country?.names))
      put('countryCode', r.country?.iso_code)
      const sub = r.subdivisions?.[0]
      put('region', sub?.iso_code ?? name(sub?.names))
      put('latitude', r.location?.latitude)
      put('longitude', r.location?.longitude)
      if (Object.keys(location).length === 0) return undefined
      const tz = r.location?.time_zone
      return typeof tz === 'string' && tz !== '' ? { location, timezone: tz } : { location }
    },
  }
}
