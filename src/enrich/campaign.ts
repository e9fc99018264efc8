/**
 * `context.campaign` from a page's `utm_*` parameters, named as analytics.js names them
 * (@segment/analytics-next, `plugins/env-enrichment` `utm()`): the part after `utm_`,
 * except `utm_campaign` → `name`; values percent-decoded, a bad escape kept as it is,
 * `+` not turned into a space. So a server-side event gets the campaign the browser would
 * have sent. Only the six parameters below are taken (analytics.js takes any `utm_*`):
 * the URL is untrusted and the output goes to every destination.
 */

/** Longest URL or query string looked at. */
export const MAX_URL = 8192
/** At most this many `&`-separated parameters are read. */
export const MAX_PARAMS = 100
/** Longer values are cut to this many characters. */
export const MAX_VALUE = 512

const FIELDS: Readonly<Record<string, string>> = {
  utm_source: 'source',
  utm_medium: 'medium',
  utm_campaign: 'name',
  utm_term: 'term',
  utm_content: 'content',
  utm_id: 'id',
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/** The query part of a URL (or a `search` string): after the first `?`, before `#`. */
export function queryOf(urlOrSearch: string): string | undefined {
  const text = urlOrSearch.length > MAX_URL ? urlOrSearch.slice(0, MAX_URL) : urlOrSearch
  const q = text.indexOf('?')
  if (q === -1) return undefined
  const hash = text.indexOf('#', q)
  return text.slice(q + 1, hash === -1 ? undefined : hash)
}

/** The campaign fields in a query string (no leading `?`); undefined when there are none. */
export function campaignFromQuery(query: string): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  let start = 0
  // analytics.js reads a stray `?` as another separator.
  for (let n = 0; n < MAX_PARAMS && start <= query.length; n++) {
    let end = start
    while (end < query.length && query.charCodeAt(end) !== 38 /* & */ && query.charCodeAt(end) !== 63 /* ? */) end++
    const part = query.slice(start, end)
    start = end + 1
    if (part.length < 5 || !part.startsWith('utm_')) continue
    const eq = part.indexOf('=')
    const field = FIELDS[eq === -1 ? part : part.slice(0, eq)]
    if (field === undefined) continue
    const raw = eq === -1 ? '' : part.slice(eq + 1)
    const value = decode(raw.length > MAX_VALUE * 3 ? raw.slice(0, MAX_VALUE * 3) : raw)
    ;(out ??= {})[field] = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value
  }
  return out
}
