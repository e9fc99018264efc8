import t from 'tap'
import Type from 'typebox'
import { createRouter, defineDestination, type DestinationDefinition } from '../src/index.js'

function recorder(holdMs: number) {
  const starts: number[] = []
  let inFlight = 0
  let maxInFlight = 0
  let done = 0
  const plugin = defineDestination({
    name: 'recorder',
    version: '0.0.0',
    settings: Type.Object({}),
    async send() {
      starts.push(performance.now())
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await new Promise((r) => setTimeout(r, holdMs))
      inFlight--
      done++
    },
  }) as unknown as DestinationDefinition
  return { plugin, starts, get maxInFlight() { return maxInFlight }, get done() { return done } }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
}

t.test('concurrency bounds the batches in flight for one destination', async (t) => {
  const rec = recorder(50)
  const router = createRouter({
    logLevel: 'silent',
    destinations: [{ name: 'r', type: rec.plugin, delivery: { concurrency: 2, batch: { maxEvents: 1, maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close())
  for (let i = 0; i < 10; i++) await router.track({ userId: 'u', event: `E${i}` })
  await until(() => rec.done === 10)
  t.equal(rec.done, 10)
  t.equal(rec.maxInFlight, 2, 'never more than 2 at once, and the limit is used')
})

t.test('rateLimit spaces sends: at most `count` starts in any `intervalMs` window', async (t) => {
  const rec = recorder(0)
  const router = createRouter({
    logLevel: 'silent',
    destinations: [{ name: 'r', type: rec.plugin, delivery: { concurrency: 10, rateLimit: { count: 2, intervalMs: 300 }, batch: { maxEvents: 1, maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close())
  for (let i = 0; i < 6; i++) await router.track({ userId: 'u', event: `E${i}` })
  await until(() => rec.done === 6)
  t.equal(rec.done, 6)
  // A lower bound on spacing is a behaviour (the limiter waited), not a speed claim.
  for (let i = 0; i + 2 < rec.starts.length; i++) {
    t.ok(rec.starts[i + 2]! - rec.starts[i]! >= 250, `send ${i + 2} waited for the window after send ${i}`)
  }
})
