/**
 * The consent matrix end to end: real HTTP posts to `router.handler()` on 127.0.0.1,
 * Segment categoryPreferences, RudderStack consentManagement, the Sec-GPC header and
 * missing consent, against destinations that need consent in mode all or any (in
 * config, or declared by their plugin) and one that needs none.
 */
import t, { type Test } from 'tap'
import { createRouter, type Router } from '../src/router.js'
import type { RouterOptions } from '../src/config.js'
import { defineDestination, type DestinationDefinition } from '../src/plugin.js'
import { captureDestination, type CaptureDestination } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

const WRITE_KEY = 'wk_consent'
const DESTS = ['seg-all', 'seg-any', 'ads', 'ads-any', 'declared', 'open'] as const
type Dest = (typeof DESTS)[number]

interface Setup {
  router: Router
  base: string
  captures: Record<Dest, CaptureDestination>
}

async function setup(t: Test, consent?: RouterOptions['consent']): Promise<Setup> {
  const captures = Object.fromEntries(DESTS.map((d) => [d, captureDestination(`cap-${d}`)])) as Record<Dest, CaptureDestination>
  // A plugin that declares its own consent requirement; the config does not repeat it.
  const declared = defineDestination({ ...captures.declared.plugin, consent: { categories: ['marketing'] } }) as DestinationDefinition
  const fast = { batch: { maxWaitMs: 0 } }
  const router = createRouter({
    logLevel: 'silent',
    sources: [{ name: 'web', writeKey: WRITE_KEY }],
    ...(consent ? { consent } : {}),
    destinations: [
      { name: 'seg-all', type: captures['seg-all'].plugin, consent: { categories: ['analytics', 'marketing'], mode: 'all' }, delivery: fast },
      { name: 'seg-any', type: captures['seg-any'].plugin, consent: { categories: ['analytics', 'marketing'], mode: 'any' }, delivery: fast },
      { name: 'ads', type: captures.ads.plugin, consent: { categories: ['advertising'] }, delivery: fast },
      { name: 'ads-any', type: captures['ads-any'].plugin, consent: { categories: ['advertising', 'analytics'], mode: 'any' }, delivery: fast },
      { name: 'declared', type: declared, delivery: fast },
      { name: 'open', type: captures.open.plugin, delivery: fast },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const { base } = await listen(t, router.handler())
  return { router, base, captures }
}

interface Case {
  name: string
  context?: Record<string, unknown>
  gpcHeader?: string
  /** Destinations that must receive the event. */
  to: Dest[]
}

async function post(t: Test, base: string, c: Case, i: number) {
  const headers: Record<string, string> = { Authorization: basic(WRITE_KEY) }
  if (c.gpcHeader !== undefined) headers['Sec-GPC'] = c.gpcHeader
  const event: Record<string, unknown> = { type: 'track', event: c.name, userId: 'u-1', messageId: `m-${i}-${c.name}` }
  if (c.context) event.context = c.context
  const reply = await send(`${base}/v1/batch`, { headers, body: { batch: [event] } })
  t.equal(reply.status, 200, `${c.name}: accepted`)
}

async function runMatrix(t: Test, s: Setup, cases: Case[]) {
  for (const [i, c] of cases.entries()) await post(t, s.base, c, i)
  // close() drains every queue: after it, what each destination got is final.
  await s.router.close({ timeoutMs: 5000 })
  const stats = s.router.stats()
  for (const d of DESTS) {
    const got = s.captures[d].events.map((e) => e.event)
    const want = cases.filter((c) => c.to.includes(d)).map((c) => c.name)
    t.same(got, want, `${d} receives exactly its events`)
    t.equal(stats.destinations[d]!.filteredBy.consent ?? 0, cases.length - want.length, `${d}: filteredBy.consent counts the blocked events`)
    t.equal(stats.destinations[d]!.filtered, cases.length - want.length, `${d}: nothing else filtered`)
  }
}

const all = { analytics: true, marketing: true, advertising: true }

t.test('missing: deny (the default)', async (t) => {
  const s = await setup(t)
  await runMatrix(t, s, [
    { name: 'segment all true', context: { consent: { categoryPreferences: all } }, to: ['seg-all', 'seg-any', 'ads', 'ads-any', 'declared', 'open'] },
    { name: 'segment marketing false', context: { consent: { categoryPreferences: { ...all, marketing: false } } }, to: ['seg-any', 'ads', 'ads-any', 'open'] },
    { name: 'segment empty preferences', context: { consent: { categoryPreferences: {} } }, to: ['open'] },
    { name: 'segment non-boolean true is not consent', context: { consent: { categoryPreferences: { analytics: 'true', marketing: 1 } } }, to: ['open'] },
    {
      name: 'rudder allowed and denied ids',
      context: { consentManagement: { provider: 'custom', allowedConsentIds: ['analytics', 'marketing'], deniedConsentIds: ['advertising'] } },
      to: ['seg-all', 'seg-any', 'ads-any', 'declared', 'open'],
    },
    {
      name: 'rudder or overrides mode all',
      context: { consentManagement: { allowedConsentIds: ['analytics'], deniedConsentIds: ['marketing'], resolutionStrategy: 'or' } },
      to: ['seg-all', 'seg-any', 'ads-any', 'open'],
    },
    {
      name: 'rudder and overrides mode any',
      context: { consentManagement: { allowedConsentIds: ['analytics'], resolutionStrategy: 'and' } },
      to: ['open'],
    },
    {
      name: 'rudder denied wins over allowed',
      context: { consentManagement: { allowedConsentIds: ['analytics', 'marketing'], deniedConsentIds: ['marketing'] } },
      to: ['seg-any', 'ads-any', 'open'],
    },
    { name: 'gpc blocks advertising in any mode', gpcHeader: '1', context: { consent: { categoryPreferences: all } }, to: ['seg-all', 'seg-any', 'declared', 'open'] },
    {
      name: 'gpc beats a rudder or strategy',
      gpcHeader: '1',
      context: { consentManagement: { allowedConsentIds: ['advertising', 'analytics'], resolutionStrategy: 'or' } },
      to: ['seg-all', 'seg-any', 'open'],
    },
    { name: 'Sec-GPC 0 is no signal', gpcHeader: '0', context: { consent: { categoryPreferences: all } }, to: ['seg-all', 'seg-any', 'ads', 'ads-any', 'declared', 'open'] },
    { name: 'no consent at all', to: ['open'] },
    { name: 'gpc alone, no consent manager', gpcHeader: '1', to: ['open'] },
  ])
})

t.test('missing: allow', async (t) => {
  const s = await setup(t, { missing: 'allow' })
  await runMatrix(t, s, [
    { name: 'no consent at all', to: ['seg-all', 'seg-any', 'ads', 'ads-any', 'declared', 'open'] },
    { name: 'empty context.consent', context: { consent: {} }, to: ['seg-all', 'seg-any', 'ads', 'ads-any', 'declared', 'open'] },
    { name: 'segment empty preferences still blocks', context: { consent: { categoryPreferences: {} } }, to: ['open'] },
    { name: 'segment marketing false', context: { consent: { categoryPreferences: { ...all, marketing: false } } }, to: ['seg-any', 'ads', 'ads-any', 'open'] },
    // GPC opts out of sale/sharing only: the categories it does not name stay as the missing option says.
    { name: 'gpc alone leaves the others to missing', gpcHeader: '1', to: ['seg-all', 'seg-any', 'declared', 'open'] },
  ])
})

t.test('gpcCategories are configurable', async (t) => {
  const s = await setup(t, { gpcCategories: ['marketing'] })
  await runMatrix(t, s, [
    // seg-any needs analytics or marketing: a GPC category blocks in mode any too.
    { name: 'gpc now blocks marketing, not advertising', gpcHeader: '1', context: { consent: { categoryPreferences: all } }, to: ['ads', 'ads-any', 'open'] },
  ])
})

t.test('a delivered event carries context.gpc only when the header said so', async (t) => {
  const s = await setup(t)
  await post(t, s.base, { name: 'with gpc', gpcHeader: '1', context: { consent: { categoryPreferences: all } }, to: [] }, 1)
  await post(t, s.base, { name: 'without gpc', context: { consent: { categoryPreferences: all } }, to: [] }, 2)
  await s.router.close({ timeoutMs: 5000 })
  const open = s.captures.open.events
  t.same(open.map((e) => e.event), ['with gpc', 'without gpc'])
  t.equal(open[0]!.context.gpc, true)
  t.equal(open[1]!.context.gpc, undefined)
  t.equal(s.captures['seg-all'].events[0]!.context.gpc, true, 'a consent-gated destination sees the signal too')
})

t.test('a client cannot lift GPC by sending context.gpc: false with the header', async (t) => {
  const s = await setup(t)
  await post(t, s.base, { name: 'spoof', gpcHeader: '1', context: { gpc: false, consent: { categoryPreferences: all } }, to: [] }, 1)
  await s.router.close({ timeoutMs: 5000 })
  t.same(s.captures.ads.events, [])
  t.equal(s.router.stats().destinations.ads!.filteredBy.consent, 1)
  t.equal(s.captures.open.events[0]!.context.gpc, true)
})
