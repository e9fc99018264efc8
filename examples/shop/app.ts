/**
 * The demo shop as an Express 5 app: firstparty mounted at /v1 (browser events arrive
 * there first-party), a static shop page, and a backend route that records an order
 * and sends "Order Completed" server-side through the same router.
 */
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import express, { type NextFunction, type Request, type Response } from 'express'
import { identity, type FirstpartyMiddleware } from '../../src/express.js'
import type { DeadLetterFilter } from '../../src/index.js'
import { CURRENCY, PRODUCTS, findProduct } from './catalog.js'

export interface ShopOptions {
  /** firstparty's Express middleware (`firstparty(config)`); mounted at /v1. */
  firstparty: FirstpartyMiddleware
  /** The write key the page's client sends with (a browser write key is public). */
  writeKey: string | undefined
  /** The router's `trustProxy`, so `req.ip` here agrees with the router's `context.ip`. */
  trustProxy?: boolean | number | string[]
}

export interface Order {
  order_id: string
  anonymousId: string
  userId: string | null
  revenue: number
  currency: string
  products: Array<{ product_id: string; sku: string; name: string; brand: string; category: string; price: number; quantity: number; position: number }>
  createdAt: string
}

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url))
const MAX_ORDERS = 1000

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

const cents = (n: number) => Math.round(n * 100) / 100

export function createShopApp({ firstparty, writeKey, trustProxy = false }: ShopOptions): express.Express {
  const router = firstparty.router
  const orders: Order[] = []
  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', trustProxy)

  // firstparty first: it reads its own bodies (text/plain, gzip) whatever the app parses.
  app.use('/v1', firstparty)
  // Every page and API call: the visitor's first-party id, set by the server (it outlives
  // Safari's 7-day cap on script-set cookies) and shared with the tracking script.
  app.use(identity({ secure: 'auto' }))

  // What the page's tracking client needs; a browser write key is public by design.
  app.get('/config.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-store')
    res.send(`window.SHOP_CONFIG = ${JSON.stringify({ writeKey: writeKey ?? null, endpoint: '/v1' })};\n`)
  })
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: 0 }))

  const api = express.Router()
  api.use(express.json({ limit: '16kb' }))

  api.get('/products', (_req, res) => {
    res.json({ currency: CURRENCY, products: PRODUCTS })
  })

  // The backend event: the server, not the browser, says an order was placed.
  api.post('/purchase', async (req: Request, res: Response) => {
    const items = (req.body as { items?: unknown } | undefined)?.items
    if (!Array.isArray(items) || items.length === 0 || items.length > 50) {
      throw new ApiError(400, 'invalid_order', 'items: send 1 to 50 items as [{ "product_id", "quantity" }]')
    }
    const products: Order['products'] = items.map((raw: unknown, i) => {
      const item = (raw ?? {}) as { product_id?: unknown; quantity?: unknown }
      const p = findProduct(item.product_id)
      if (!p) throw new ApiError(400, 'invalid_order', `items[${i}].product_id: no product "${String(item.product_id).slice(0, 50)}"`)
      const quantity = item.quantity ?? 1
      if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
        throw new ApiError(400, 'invalid_order', `items[${i}].quantity: must be an integer from 1 to 99`)
      }
      return { product_id: p.product_id, sku: p.sku, name: p.name, brand: p.brand, category: p.category, price: p.price, quantity, position: i + 1 }
    })
    // The same id the browser's events carry (identity() issued it if there was none).
    const { anonymousId, userId = null } = req.firstparty!
    const revenue = cents(products.reduce((sum, p) => sum + p.price * p.quantity, 0))
    const order: Order = { order_id: `ord_${randomUUID().slice(0, 8)}`, anonymousId, userId, revenue, currency: CURRENCY, products, createdAt: new Date().toISOString() }
    orders.push(order)
    if (orders.length > MAX_ORDERS) orders.shift()

    // Analytics must never fail a checkout: the order stands even if the event is refused.
    let messageId: string | null = null
    try {
      ;({ messageId } = await router.track({
        event: 'Order Completed',
        anonymousId,
        ...(userId ? { userId } : {}),
        properties: { order_id: order.order_id, total: revenue, revenue, currency: CURRENCY, products },
        context: { ip: req.ip?.replace(/^::ffff:/, ''), userAgent: req.get('user-agent') },
      }))
    } catch (err) {
      console.warn(`order ${order.order_id}: "Order Completed" was not sent: ${(err as Error).message}`)
    }
    res.status(201).json({ order, messageId })
  })

  api.get('/orders', (_req, res) => {
    res.json({ orders })
  })

  api.get('/stats', (_req, res) => {
    res.json(router.stats())
  })

  api.get('/dead-letters', (req, res) => {
    const filter: DeadLetterFilter = { limit: Math.min(1000, Math.max(1, Number(req.query.limit) || 100)) }
    if (typeof req.query.destination === 'string') filter.destination = req.query.destination
    res.json({ count: router.deadLetters.count(filter.destination ? { destination: filter.destination } : {}), deadLetters: router.deadLetters.list(filter) })
  })

  api.post('/dead-letters/replay', (req, res) => {
    const destination = typeof req.query.destination === 'string' ? req.query.destination : undefined
    res.json(router.deadLetters.replay(destination ? { destination } : {}))
  })

  // Self-service privacy for this browser's visitor, known by the first-party cookie:
  // what was shared about me, and "forget me" (a deletion request fanned out to every
  // destination, with a receipt each). A real shop would put these behind its login.
  const visitor = (req: Request) => {
    const id = req.firstparty!
    if (id.isNew) throw new ApiError(400, 'no_visitor', 'this browser had no ajs_anonymous_id cookie, so nothing was shared about it yet: load the shop page first')
    // Only the anonymous id: ajs_user_id is whatever the browser claims, and must not let
    // one visitor read or delete another's data. A real shop would use its login here.
    return { anonymousId: id.anonymousId }
  }
  api.get('/privacy/my-data', async (req, res) => {
    const ids = visitor(req)
    res.json({ subject: ids, shared: await router.ledger.forUser(ids, { limit: 200 }) })
  })
  api.post('/privacy/forget-me', async (req, res) => {
    const ids = visitor(req)
    const { requestId, receipts } = await router.deleteUser(ids, { reason: 'self-service request from the shop page' })
    res.json({ requestId, receipts: receipts.map(({ target, status, error }) => ({ target, status, ...(error ? { error } : {}) })) })
  })

  api.use((_req, _res, next) => next(new ApiError(404, 'not_found', 'no such API route')))
  api.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof ApiError) return void res.status(err.status).json({ code: err.code, message: err.message })
    const e = err as { status?: number; code?: unknown; type?: unknown; message?: string }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      // express.json(): malformed or oversized bodies.
      return void res.status(e.status).json({ code: typeof e.type === 'string' ? e.type : 'bad_request', message: e.message ?? 'bad request' })
    }
    console.error(err)
    res.status(500).json({ code: 'internal_error', message: 'the request failed' })
  })
  app.use('/api', api)
  return app
}
