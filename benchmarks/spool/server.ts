/**
 * One router with the spool named by BENCH_SPOOL (JSON) and one no-op destination,
 * served by node:http on a random port. Answers the orchestrator's IPC questions: its
 * CPU time and delivered count (at the edges of the measured window), and `drain`
 * (resolves once every accepted event is delivered).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Type from 'typebox'
import { createRouter, defineDestination, type Logger } from '../../src/index.js'
import type { SpoolConfig } from '../../src/config.js'
import { WRITE_KEY } from '../ingest/payload.js'

export type ToServer = { type: 'sample' } | { type: 'drain' } | { type: 'close' }
export type FromServer =
  | { type: 'listening'; port: number }
  | { type: 'sample'; cpuUs: number; delivered: number; accepted: number }
  | { type: 'drained'; delivered: number; accepted: number; deduplicated: number; pending: number | undefined }

let delivered = 0
const noop = defineDestination({
  name: 'noop',
  version: '1.0.0',
  settings: Type.Object({}),
  async send(events) {
    delivered += events.length
  },
})
const quiet: Logger = { debug() {}, info() {}, warn() {}, error: (o, m) => void process.stderr.write(`${m} ${JSON.stringify(o)}\n`) }
const spool = JSON.parse(process.env.BENCH_SPOOL ?? '{"type":"memory"}') as SpoolConfig
const router = createRouter({ logger: quiet, sources: [{ name: 'web', writeKey: WRITE_KEY }], destinations: [{ name: 'noop', type: noop }], spool })
const server = createServer(router.handler())
const send = (m: FromServer) => process.send!(m)
server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }))

process.on('message', async (m: ToServer) => {
  if (m.type === 'sample') {
    const u = process.cpuUsage()
    send({ type: 'sample', cpuUs: u.user + u.system, delivered, accepted: router.stats().accepted })
  } else if (m.type === 'drain') {
    router.flush()
    const end = Date.now() + 120_000
    const want = () => router.stats().accepted - router.stats().deduplicated
    while (delivered < want() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
    const s = router.stats()
    send({ type: 'drained', delivered, accepted: s.accepted, deduplicated: s.deduplicated, pending: s.spool?.pending })
  } else if (m.type === 'close') {
    server.close()
    await router.close({ timeoutMs: 5000 })
    process.exit(0)
  }
})
