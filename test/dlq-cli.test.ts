/**
 * The dlq CLI in its own process against a real SQLite spool file, beside a router:
 * list with filters, replay (idempotent, progress bar and summary on stderr), purge.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRouter, type Logger } from '../src/index.js'
import { loadConfig } from '../src/config.js'
import { openSqliteDatabase, SqliteDeadLetterStore } from '../src/spool/sqlite.js'
import { startTestServer } from '../src/testing.js'

const CLI = fileURLToPath(new URL('../src/cli/dlq.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** `firstparty dlq ...args --config <dir>/<config>` (the TypeScript loader resolves from the repository, so it runs there). */
function run(args: string[], dir: string, config = 'firstparty.config.yaml'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', CLI, ...args, '--config', join(dir, config)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FIRSTPARTY_CONFIG: '' } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

t.test('list, replay and purge dead letters of a SQLite spool from the command line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-dlq-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  const dbPath = join(dir, 'data', 'spool.db')
  writeFileSync(join(dir, 'firstparty.config.yaml'), `spool:\n  type: sqlite\n  path: ${dbPath}\ndestinations:\n  - name: hook\n    type: webhook\n    settings:\n      url: ${dest.url}\n    delivery:\n      batch:\n        maxEvents: 100\n        maxWaitMs: 5\n`)
  writeFileSync(join(dir, 'memory.yaml'), 'destinations: []\n')

  // 1000 old permanent failures and 150 recent retention overflows of "hook", 50 of a destination since removed.
  const now = Date.now()
  const db = openSqliteDatabase(dbPath)
  const store = new SqliteDeadLetterStore(db)
  const ev = (id: string) => ({ type: 'track', event: 'E', userId: 'u', messageId: id, properties: {}, context: {}, integrations: {} }) as never
  store.add(Array.from({ length: 1000 }, (_, i) => ({ destination: 'hook', event: ev(`perm-${i}`), error: { code: 'DELIVERY_PERMANENT' as const, message: 'HTTP 400', status: 400 }, attempts: 1, acceptedAt: now - 7_300_000, deadAt: now - 7_200_000 })))
  store.add(Array.from({ length: 150 }, (_, i) => ({ destination: 'hook', event: ev(`ret-${i}`), error: { code: 'DELIVERY_RETENTION' as const, message: 'too many waiting' }, attempts: 0, acceptedAt: now - 1000, deadAt: now })))
  store.add(Array.from({ length: 50 }, (_, i) => ({ destination: 'gone', event: ev(`gone-${i}`), error: { code: 'DELIVERY_AUTH' as const, message: 'HTTP 401', status: 401 }, attempts: 1, acceptedAt: now - 1000, deadAt: now })))
  db.close()

  const listed = await run(['list', '--destination', 'hook', '--code', 'DELIVERY_RETENTION', '--json', '--limit', '5'], dir)
  t.equal(listed.code, 0, listed.stderr)
  const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { destination: string; error: { code: string }; event: { messageId: string } })
  t.equal(lines.length, 5)
  t.ok(lines.every((l) => l.destination === 'hook' && l.error.code === 'DELIVERY_RETENTION'))
  t.equal(lines[0]!.event.messageId, 'ret-0')
  t.match(listed.stderr, /5 of 150 dead letters \(destination hook, code DELIVERY_RETENTION\)/)

  const recent = await run(['list', '--since', '1h'], dir)
  t.match(recent.stderr, /100 of 200 dead letters/, 'the list shows 100 by default; 200 are recent')
  t.match(recent.stdout, /DELIVERY_RETENTION/)
  const old = await run(['list', '--until', new Date(now - 3_600_000).toISOString(), '--limit', '1'], dir)
  t.match(old.stderr, /1 of 1000 dead letters/)

  // Replay the old failures: a progress bar (a line per chunk off a terminal) and a summary.
  const replay = await run(['replay', '--code', 'DELIVERY_PERMANENT'], dir)
  t.equal(replay.code, 0, replay.stderr)
  t.match(replay.stderr, /replaying \[#+-*\] 500\/1000/)
  t.match(replay.stderr, /replaying \[#{30}\] 1000\/1000 \(100%/)
  t.match(replay.stderr, /replayed 1000 of 1000 dead letters \(code DELIVERY_PERMANENT\)/)
  const again = await run(['replay', '--code', 'DELIVERY_PERMANENT'], dir)
  t.match(again.stderr, /replayed 0 of 0 dead letters/, 'a second replay finds nothing: idempotent')

  const rest = await run(['replay'], dir)
  t.match(rest.stderr, /replayed 150 of 200 dead letters; 50 left in place: their destination is not in the config/)
  const purge = await run(['purge', '--destination', 'gone'], dir)
  t.match(purge.stderr, /purged 50 of 50 dead letters \(destination gone\)/)
  const empty = await run(['list'], dir)
  t.match(empty.stderr, /0 of 0 dead letters/)

  // The router on that config delivers each replayed event exactly once.
  const config = await loadConfig(join(dir, 'firstparty.config.yaml'))
  const router = createRouter({ ...config, logger: quiet })
  t.teardown(() => router.close({ timeoutMs: 500 }))
  const end = Date.now() + 10_000
  while (router.stats().destinations.hook!.delivered < 1150 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  const ids = dest.requests.flatMap((q) => ((q.json as { batch?: Array<{ messageId: string }> }).batch ?? []).map((e) => e.messageId))
  t.equal(ids.length, 1150, 'every replayed event delivered once')
  t.equal(new Set(ids).size, 1150)

  // Usage and config errors.
  t.equal((await run(['list', '--since', 'yesterday'], dir)).code, 2)
  t.equal((await run(['frobnicate'], dir)).code, 2)
  const mem = await run(['list'], dir, 'memory.yaml')
  t.equal(mem.code, 1)
  t.match(mem.stderr, /spool is memory/)
})
