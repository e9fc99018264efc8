/**
 * `npm start`: the demo shop with firstparty mounted at /v1.
 *
 *   PORT               port to listen on, all interfaces (default 3000; 0 picks a free one)
 *   FIRSTPARTY_CONFIG  config file (default: firstparty.config.yaml at the repo root)
 */
import type { AddressInfo } from 'node:net'
import { relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'
import { firstparty } from '../../src/express.js'
import { createShopApp } from './app.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

async function main(): Promise<void> {
  const configFile = resolve(process.env.FIRSTPARTY_CONFIG || resolve(REPO_ROOT, 'firstparty.config.yaml'))
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, not "${process.env.PORT}"`)

  const config = await loadConfig(configFile)
  const middleware = firstparty(config)
  const router = middleware.router
  const writeKey = config.sources?.find((s) => !s.type && (s.writeKey || s.writeKeys?.length))
  const app = createShopApp({ firstparty: middleware, writeKey: writeKey?.writeKey ?? writeKey?.writeKeys?.[0], trustProxy: config.trustProxy })

  const server = app.listen(port)
  await new Promise<void>((ok, fail) => {
    server.once('listening', ok)
    server.once('error', fail)
  })
  const url = `http://localhost:${(server.address() as AddressInfo).port}`
  const destinations = (config.destinations ?? []).map((d) => {
    const type = typeof d.type === 'string' ? d.type : d.type.name
    const where = typeof d.settings?.path === 'string' ? ` → ${d.settings.path}` : typeof d.settings?.url === 'string' ? ` → ${new URL(d.settings.url).origin}` : ''
    return `${d.name} (${type}${where}${d.enabled === false ? ', disabled' : ''})`
  })
  const shownConfig = relative(process.cwd(), configFile) || configFile
  console.log(`firstparty demo shop on ${url} · config ${shownConfig.startsWith('..') ? configFile : shownConfig} · destinations: ${destinations.join(', ') || 'none'}`)

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting without draining`)
      process.exit(1)
    }
    stopping = true
    console.log(`${signal}: draining destinations…`)
    server.close()
    server.closeIdleConnections()
    router.close().then(
      () => {
        const s = router.stats()
        const delivered = Object.entries(s.destinations).map(([name, d]) => `${name} ${d.delivered}`).join(', ')
        console.log(`stopped · accepted ${s.accepted} · delivered: ${delivered || 'none'} · dead letters ${router.deadLetters.count()}`)
        process.exit(0)
      },
      (err: unknown) => {
        console.error(`close failed: ${(err as Error).message}`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE' || code === 'EACCES') console.error(`cannot listen on port ${process.env.PORT || 3000} (${code}); set PORT to another port`)
  else console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
})
