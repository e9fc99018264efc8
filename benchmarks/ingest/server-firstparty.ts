/**
 * B: firstparty mounted in Express 5 the way the README shows, one source, one no-op
 * destination, default limits and delivery settings. The destination counts what it
 * receives so the run can check that every acknowledged event was delivered.
 * C (diagnostic, BENCH_SERVERS=A,B,C): the same with messageId dedup switched off.
 */
import express from 'express'
import Type from 'typebox'
import { createRouter, defineDestination, type Logger } from '../../src/index.js'
import { serve } from './child.js'
import { WRITE_KEY } from './payload.js'

let received = 0
const noop = defineDestination({
  name: 'noop',
  version: '1.0.0',
  settings: Type.Object({}),
  async send(events) {
    received += events.length
  },
})

const warnings: string[] = []
const logger: Logger = {
  debug() {},
  info() {},
  warn: (_o, msg) => void warnings.push(String(msg)),
  error: (_o, msg) => void warnings.push(String(msg)),
}

const router = createRouter({
  logger,
  sources: [{ name: 'web', writeKey: WRITE_KEY }],
  destinations: [{ name: 'noop', type: noop }],
  ...(process.env.BENCH_DEDUP === 'off' ? { dedup: false as const } : {}),
})

const app = express()
app.disable('x-powered-by')
app.use('/v1', router.express())

serve(app, async () => {
  router.flush()
  const deadline = Date.now() + 10_000
  while (router.stats().destinations.noop!.held > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  const s = router.stats()
  const d = s.destinations.noop!
  const deadLettered = Object.values(d.deadLettered).reduce((a, b) => a + (b ?? 0), 0)
  if (warnings.length) process.stderr.write(`firstparty logged ${warnings.length} warnings/errors, first: ${warnings[0]}\n`)
  return {
    received,
    accepted: s.accepted,
    deduplicated: s.deduplicated,
    rejected: Object.values(s.rejected).reduce((a, b) => a + b, 0),
    delivered: d.delivered,
    deadLettered,
    held: d.held,
    logged: warnings.length,
  }
})
