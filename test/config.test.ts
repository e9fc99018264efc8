import t, { type Test } from 'tap'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, createRouter, interpolateEnv, loadConfig } from '../src/index.js'

async function tmpFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fp-config-'))
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

function configError(t: Test, fn: () => unknown, code: string, path: string): void {
  try {
    fn()
    t.fail(`expected ${code} at ${path}`)
  } catch (err) {
    t.type(err, ConfigError)
    t.equal((err as ConfigError).code, code)
    t.ok((err as ConfigError).issues.some((i) => i.path === path), `issues name ${path}: ${(err as Error).message}`)
    t.match((err as Error).message, path)
  }
}

t.test('loadConfig reads YAML, interpolates ${ENV} with defaults, and validates', async (t) => {
  const file = await tmpFile('fp.yaml', `
sources:
  - name: web
    writeKey: \${WK}
    allowedOrigins: ['https://shop.example']
destinations:
  - name: hook
    type: webhook
    settings:
      url: \${HOOK_URL:-http://127.0.0.1:9/in}
      headers: { authorization: "Bearer \${TOKEN}" }
      mode: event
  - name: literal
    type: console
    enabled: false
    settings: { stream: stderr }
`)
  const cfg = await loadConfig(file, { WK: 'secret-key', TOKEN: 't0k' })
  t.equal(cfg.sources?.[0]?.writeKey, 'secret-key')
  t.same(cfg.destinations?.[0]?.settings, { url: 'http://127.0.0.1:9/in', headers: { authorization: 'Bearer t0k' }, mode: 'event' })
  const router = createRouter({ ...cfg, logLevel: 'silent' })
  t.teardown(() => router.close())
  t.same(Object.keys(router.stats().destinations), ['hook'], 'disabled destination is not started')
})

t.test('loadConfig reads JSON too', async (t) => {
  const file = await tmpFile('fp.json', JSON.stringify({ sources: [{ name: 'a', writeKey: 'k' }] }))
  const cfg = await loadConfig(file, {})
  t.equal(cfg.sources?.[0]?.name, 'a')
})

t.test('a missing environment variable names the config path', async (t) => {
  const file = await tmpFile('fp.yaml', 'sources:\n  - name: web\n    writeKey: ${NOPE_NOT_SET}\n')
  await t.rejects(loadConfig(file, {}), { code: 'CONFIG_ENV_MISSING', path: '/sources/0/writeKey' })
})

t.test('$${X} is a literal and env values cannot change the structure', async (t) => {
  t.same(interpolateEnv({ a: 'x$${HOME}y', b: '${V}' }, { V: 'a: [1]\n  b: 2' }), { a: 'x${HOME}y', b: 'a: [1]\n  b: 2' })
})

t.test('unreadable and unparsable files are CONFIG_FILE errors', async (t) => {
  await t.rejects(loadConfig('/nonexistent/fp.yaml', {}), { code: 'CONFIG_FILE' })
  const bad = await tmpFile('bad.yaml', 'sources: [\n')
  await t.rejects(loadConfig(bad, {}), { code: 'CONFIG_FILE' })
})

t.test('schema errors name every bad path', async (t) => {
  const file = await tmpFile('fp.yaml', `
sources:
  - name: web
    writeKey: k
    allowedOrigin: ['x']
destinations:
  - name: hook
    type: webhook
    delivery: { concurrency: 0 }
`)
  const err = await loadConfig(file, {}).catch((e: unknown) => e)
  t.type(err, ConfigError)
  const paths = (err as ConfigError).issues.map((i) => i.path)
  t.ok(paths.includes('/sources/0/allowedOrigin'), 'unknown option named')
  t.ok(paths.includes('/destinations/0/delivery/concurrency'), 'bad value named')
})

t.test('createRouter: plugin settings, unknown plugins, duplicates, trustProxy', async (t) => {
  configError(t, () => createRouter({ destinations: [{ name: 'h', type: 'webhook', settings: {} }] }), 'CONFIG_INVALID', '/destinations/0/settings/url')
  configError(t, () => createRouter({ destinations: [{ name: 'h', type: 'webhook', settings: { url: 'ftp://x' } }] }), 'CONFIG_INVALID', '/destinations/0/settings/url')
  configError(t, () => createRouter({ destinations: [{ name: 'h', type: 'nosuch' }] }), 'CONFIG_UNKNOWN_PLUGIN', '/destinations/0/type')
  configError(
    t,
    () => createRouter({ destinations: [{ name: 'h', type: 'console' }, { name: 'h', type: 'console' }] }),
    'CONFIG_DUPLICATE_NAME',
    '/destinations/1/name',
  )
  configError(
    t,
    () => createRouter({ sources: [{ name: 'a', writeKey: 'k' }, { name: 'b', writeKeys: ['x', 'k'] }] }),
    'CONFIG_DUPLICATE_WRITE_KEY',
    '/sources/1/writeKeys/1',
  )
  configError(t, () => createRouter({ sources: [{ name: 'a' }] }), 'CONFIG_INVALID', '/sources/0/writeKey')
  configError(t, () => createRouter({ trustProxy: ['10.0.0.0/99'] }), 'CONFIG_INVALID', '/trustProxy/0')
  configError(t, () => createRouter({ trustProxy: ['not-an-ip'] }), 'CONFIG_INVALID', '/trustProxy/0')
  configError(t, () => createRouter({ limits: { maxRequestBytes: -1 } }), 'CONFIG_INVALID', '/limits/maxRequestBytes')
})

t.test('loadConfig imports a plugin module named by relative path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-plugin-'))
  // A plugin as users ship them: compiled JavaScript, importing firstparty.
  const src = new URL('../src/plugin.ts', import.meta.url).href
  await writeFile(join(dir, 'my-dest.mjs'), `
import { defineDestination } from '${src}'
const settings = { type: 'object', properties: { level: { type: 'integer' } }, required: ['level'] }
export default defineDestination({ name: 'my-dest', version: '1.0.0', settings, async send() {} })
`)
  await writeFile(join(dir, 'fp.yaml'), 'destinations:\n  - name: mine\n    type: ./my-dest.mjs\n    settings: { level: 2 }\n')
  const cfg = await loadConfig(join(dir, 'fp.yaml'), {})
  t.equal(cfg.destinations?.[0]?.type, 'my-dest')
  const router = createRouter({ ...cfg, logLevel: 'silent' })
  t.teardown(() => router.close())
  t.same(Object.keys(router.stats().destinations), ['mine'])

  await writeFile(join(dir, 'nolevel.yaml'), 'destinations:\n  - name: mine\n    type: ./my-dest.mjs\n')
  const cfg2 = await loadConfig(join(dir, 'nolevel.yaml'), {})
  configError(t, () => createRouter(cfg2), 'CONFIG_INVALID', '/destinations/0/settings/level')

  await writeFile(join(dir, 'bad.yaml'), 'destinations:\n  - name: x\n    type: ./missing-plugin.js\n')
  await t.rejects(loadConfig(join(dir, 'bad.yaml'), {}), { code: 'CONFIG_UNKNOWN_PLUGIN', path: '/destinations/0/type' })
})
