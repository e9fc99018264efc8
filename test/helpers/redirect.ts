import got, { type Got } from 'got'
import type { TestServer } from '../../src/testing.js'

/**
 * A got for a plugin's `ctx.http` that sends every request to the local test server,
 * whatever vendor host the plugin asked for (ingestion and privacy APIs alike), and
 * records the URL it asked for in `asked`.
 */
export function httpTo(server: TestServer, asked: string[] = []): Got {
  return got.extend({
    retry: { limit: 0 },
    handlers: [(options, next) => {
      const u = new URL(options.url as URL)
      asked.push(u.href)
      u.protocol = 'http:'
      u.host = new URL(server.url).host
      options.url = u
      return next(options)
    }],
  })
}
