/**
 * `firstparty/express`: mount a router in an Express (4 or 5) or Connect app.
 *
 * ```ts
 * import express from 'express'
 * import { firstparty } from 'firstparty/express'
 * const app = express()
 * const collector = firstparty({ sources: [...], destinations: [...] })
 * app.use('/v1', collector)          // or app.use(collector) — paths are matched below the mount point
 * process.on('SIGTERM', () => collector.router.close())
 * ```
 *
 * Mount it before `express.urlencoded()`: RudderStack's node SDK labels gzip JSON as
 * form-urlencoded, and a host parser would consume it. A host `express.json()` that
 * ran first is fine: the router uses the body it parsed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RouterOptions } from './config.js'
import { createRouter, type Router } from './router.js'

/** First-party identity: the `ajs_anonymous_id` cookie set by the server (docs/identity.md). */
export { ANONYMOUS_ID_COOKIE, getAnonymousId, identity, USER_ID_COOKIE } from './identity.js'
export type { FirstpartyIdentity, IdentityOptions } from './identity.js'

export type FirstpartyMiddleware = ((req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void) & {
  /** The router behind the middleware: backend events, stats, dead letters, close(). */
  router: Router
}

/** Create a router (or take one) and return its Express middleware, with `.router` attached. */
export function firstparty(optionsOrRouter: RouterOptions | Router = {}): FirstpartyMiddleware {
  const router = typeof (optionsOrRouter as Router).express === 'function' ? (optionsOrRouter as Router) : createRouter(optionsOrRouter as RouterOptions)
  const mw = router.express() as FirstpartyMiddleware
  mw.router = router
  return mw
}
