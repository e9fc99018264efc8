/**
 * CORS for browser clients. Preflights carry no credentials, so they are answered for
 * any origin some source allows; the request itself is then checked against its own
 * source's list. Requested headers are reflected (RudderStack's SDK sends custom ones)
 * and the answer is cached for a day, since every short path is preflighted apart.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

export type OriginMatcher = (origin: string) => boolean

/** `'*'`, an exact origin, or a wildcard host (`https://*.example.com`, `*.example.com`). */
export function originMatcher(patterns: string[] | undefined): OriginMatcher {
  if (!patterns || patterns.includes('*')) return () => true
  const exact = new Set<string>()
  const suffixes: Array<{ scheme: string | undefined; suffix: string }> = []
  for (const p of patterns) {
    const m = /^(?:(https?):\/\/)?\*\.(.+)$/.exec(p)
    if (m) suffixes.push({ scheme: m[1], suffix: '.' + m[2]!.toLowerCase() })
    else exact.add(p.replace(/\/$/, '').toLowerCase())
  }
  return (origin) => {
    const o = origin.toLowerCase()
    if (exact.has(o)) return true
    for (const s of suffixes) {
      const m = /^(https?):\/\/([^/]+)$/.exec(o)
      if (m && (!s.scheme || s.scheme === m[1]) && m[2]!.endsWith(s.suffix)) return true
    }
    return false
  }
}

const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/
const DEFAULT_HEADERS = 'Content-Type, Authorization, X-Retry-Count, AnonymousId, SentAt'

export function setCorsHeaders(res: ServerResponse, origin: string): void {
  res.setHeader('Access-Control-Allow-Origin', origin)
  res.setHeader('Access-Control-Allow-Credentials', 'true')
  res.setHeader('Access-Control-Expose-Headers', 'Retry-After')
  res.appendHeader('Vary', 'Origin')
}

/** Answer a preflight: 204 with the allowances, the requested headers reflected. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, origin: string): void {
  setCorsHeaders(res, origin)
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
  const requested = req.headers['access-control-request-headers']
  // Reflect only a well-formed header list: never echo arbitrary bytes into a header.
  res.setHeader('Access-Control-Allow-Headers', typeof requested === 'string' && HEADER_LIST.test(requested.trim()) ? requested.trim() : DEFAULT_HEADERS)
  res.setHeader('Access-Control-Max-Age', '86400')
  res.appendHeader('Vary', 'Access-Control-Request-Headers')
  res.statusCode = 204
  res.end()
}
