/**
 * User-agent parsing with ua-parser-js 1.x. The 1.x line is MIT; 2.x changed to AGPL-3.0,
 * which a library embedded in closed-source servers cannot carry, so this stays on 1.x.
 *
 * A site sees few distinct user agents and each many times, so parses go through a
 * small LRU: a hit costs a Map lookup instead of ua-parser's dozens of regular expressions.
 */
import UAParser from 'ua-parser-js'
import { isBotUserAgent, MAX_USER_AGENT } from './bots.js'

/** What one user agent contributes to an event's context; only defined fields. */
export interface ParsedUserAgent {
  readonly device: Readonly<Record<string, string>>
  readonly os: Readonly<Record<string, string>>
  readonly browser: Readonly<Record<string, string>>
  readonly bot: boolean
}

// ua-parser-js leaves device.type undefined for desktops; on these systems that is what it is.
const DESKTOP_OS = new Set([
  'Windows', 'Mac OS', 'Linux', 'Chromium OS', 'Ubuntu', 'Debian', 'Fedora', 'Mint', 'Arch',
  'Gentoo', 'openSUSE', 'FreeBSD', 'OpenBSD', 'NetBSD', 'Solaris',
])

function defined(fields: Record<string, string | undefined>): Readonly<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(fields)) if (typeof v === 'string' && v !== '') out[k] = v
  return Object.freeze(out)
}

/** Parse without the cache. */
export function parseUserAgent(userAgent: string): ParsedUserAgent {
  const ua = userAgent.length > MAX_USER_AGENT ? userAgent.slice(0, MAX_USER_AGENT) : userAgent
  const r = new UAParser(ua).getResult()
  const bot = isBotUserAgent(ua)
  const type = r.device.type ?? (!bot && r.os.name !== undefined && DESKTOP_OS.has(r.os.name) ? 'desktop' : undefined)
  // Chrome's reduced user agent on Android names every phone "K": that is no model.
  const model = r.device.model === 'K' ? undefined : r.device.model
  return Object.freeze({
    device: defined({ type, manufacturer: r.device.vendor, model }),
    os: defined({ name: r.os.name, version: r.os.version }),
    browser: defined({ name: r.browser.name, version: r.browser.version }),
    bot,
  })
}

/** A bounded least-recently-used cache of parses. */
export class UserAgentCache {
  readonly #max: number
  readonly #entries = new Map<string, ParsedUserAgent>()

  constructor(max = 1000) {
    this.#max = max
  }

  get size(): number {
    return this.#entries.size
  }

  parse(userAgent: string): ParsedUserAgent {
    const key = userAgent.length > MAX_USER_AGENT ? userAgent.slice(0, MAX_USER_AGENT) : userAgent
    const hit = this.#entries.get(key)
    if (hit !== undefined) {
      // Re-insert: a Map iterates in insertion order, so the oldest key is the least recent.
      this.#entries.delete(key)
      this.#entries.set(key, hit)
      return hit
    }
    const parsed = parseUserAgent(key)
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, parsed)
    return parsed
  }
}
