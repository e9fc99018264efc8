import t from 'tap'
import { toIso } from '../src/normalize/normalize.js'
import { createRouter } from '../src/index.js'

t.test('toIso matches Date#toISOString across days, years and edges', async (t) => {
  const now = Date.now()
  const samples = [0, 1, 999, 86_399_999, 86_400_000, now, now - 1, now + 86_400_000, 951_782_400_000 /* 2000-02-29 */, 253_402_300_799_999, -1, -86_400_001, 1.5]
  let seed = 42
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
  for (let i = 0; i < 5000; i++) samples.push(Math.floor(now + (rand() - 0.5) * 86_400_000 * 4), Math.floor(rand() * 253_402_300_799_999))
  let mismatches = 0
  for (const ms of samples) if (toIso(ms) !== new Date(ms).toISOString()) mismatches++
  t.equal(mismatches, 0)
})

t.test('timestamps pushed outside the representable range are an invalid_event', async (t) => {
  const router = createRouter({ logLevel: 'silent' })
  t.teardown(() => router.close())
  await t.rejects(
    router.track({ userId: 'u', event: 'E', originalTimestamp: '-271821-04-20T00:00:00.000Z', sentAt: '+275760-09-13T00:00:00.000Z' }),
    { code: 'invalid_event' },
  )
})
