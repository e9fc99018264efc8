// The template's own test: the conformance suite, plus the vendor behaviours the suite
// does not know about (here: deletion). A plugin copied from _template starts with this.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { createTestContext, runDestinationConformance, startTestServer, type DestinationExample } from '../src/testing.js'
import { AuthenticationError, PermanentError } from '../src/index.js'
import plugin, { TemplateSettings } from '../plugins/_template/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/_template/examples.json', import.meta.url), 'utf8')) as DestinationExample[]

await runDestinationConformance(t, {
  plugin,
  settings: { apiKey: 'test-key' },
  examples,
  vendor: { success: { status: 200, body: { accepted: 1 } }, maxEventsPerRequest: 500 },
  readme: new URL('../plugins/_template/README.md', import.meta.url),
})

t.test('the API key is sent as a Bearer token', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  await plugin.send([{ kind: 'event', name: 'X' }] as never, createTestContext({ apiKey: 'k-123', region: 'us' as const, endpoint: server.url }))
  t.equal(server.requests[0]!.headers.authorization, 'Bearer k-123')
  t.equal(server.requests[0]!.url, '/v1/events')
})

t.test('deleteUser posts the userId; a vendor error keeps its message', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const ctx = createTestContext({ apiKey: 'k', region: 'us' as const, endpoint: server.url })
  server.script({ status: 202, body: {} }, { status: 400, body: { error: { code: 'unknown_user', message: 'no such user' } } }, { status: 401 })
  await plugin.deleteUser!({ userId: 'u-1' }, ctx)
  t.same(server.requests[0]!.json, { user_id: 'u-1' })
  t.equal(server.requests[0]!.url, '/v1/deletions')
  const err = await plugin.deleteUser!({ userId: 'u-2' }, ctx).catch((e: unknown) => e)
  t.type(err, PermanentError)
  t.match((err as Error).message, /400: unknown_user no such user/)
  t.type(await plugin.deleteUser!({ userId: 'u-3' }, ctx).catch((e: unknown) => e), AuthenticationError)
  t.type(await plugin.deleteUser!({ anonymousId: 'a' }, ctx).catch((e: unknown) => e), PermanentError, 'no userId: permanent')
})

t.test('every setting is documented in the schema', async (t) => {
  t.same(Object.keys(TemplateSettings.properties).sort(), ['apiKey', 'endpoint', 'region'])
})
