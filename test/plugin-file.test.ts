import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createRouter, fileDestination, type Logger } from '../src/index.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'firstparty-file-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Every line of the rotated files (oldest first) and then the current file. */
async function allLines(dir: string, base: string): Promise<{ files: string[]; lines: string[] }> {
  const rotated = (await readdir(dir)).filter((f) => f.startsWith(base + '.')).sort()
  const files = [...rotated, base]
  const lines: string[] = []
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8')
    if (text !== '' && !text.endsWith('\n')) throw new Error(`${f} does not end with a newline: a line was cut`)
    lines.push(...text.split('\n').filter(Boolean))
  }
  return { files, lines }
}

t.test('writes one NDJSON line per event into a folder it creates', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'nested', 'deeper', 'events.ndjson')
  const router = createRouter({ logger: quiet, destinations: [{ name: 'f', type: 'file', settings: { path }, delivery: { batch: { maxEvents: 3, maxWaitMs: 5 } } }] })
  const ids: string[] = []
  for (let i = 0; i < 7; i++) ids.push((await router.track({ userId: 'u', event: 'E', properties: { i, text: 'line\nbreak' } })).messageId)
  await router.close({ timeoutMs: 2000 })
  const text = await readFile(path, 'utf8')
  const lines = text.split('\n')
  t.equal(lines.pop(), '', 'ends with a newline')
  t.equal(lines.length, 7, 'one line per event, even with a newline inside a value')
  const events = lines.map((l) => JSON.parse(l) as { messageId: string; type: string; properties: { i: number; text: string } })
  t.same(events.map((e) => e.messageId), ids, 'in order')
  t.equal(events[0]!.type, 'track')
  t.equal(events[0]!.properties.text, 'line\nbreak')
  t.equal(router.stats().destinations.f!.delivered, 7)
})

t.test('appends to an existing file', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'events.ndjson')
  await writeFile(path, '{"old":true}\n')
  const router = createRouter({ logger: quiet, destinations: [{ name: 'f', type: 'file', settings: { path }, delivery: { batch: { maxWaitMs: 5 } } }] })
  await router.track({ userId: 'u', event: 'E' })
  await router.close({ timeoutMs: 2000 })
  const lines = (await readFile(path, 'utf8')).trim().split('\n')
  t.equal(lines.length, 2)
  t.equal(lines[0], '{"old":true}')
})

t.test('rotates by maxBytes without losing a line, even when rotations come fast', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'events.ndjson')
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'f', type: 'file', settings: { path, maxBytes: 1024, maxFiles: 1000 }, delivery: { batch: { maxEvents: 2, maxWaitMs: 5 }, concurrency: 4 } }],
  })
  const ids: string[] = []
  const pad = 'p'.repeat(300)
  for (let i = 0; i < 60; i++) ids.push((await router.track({ userId: 'u', event: 'E', properties: { i, pad } })).messageId)
  await router.close({ timeoutMs: 5000 })
  t.equal(router.stats().destinations.f!.delivered, 60)
  const { files, lines } = await allLines(dir, 'events.ndjson')
  t.ok(files.length > 5, `rotated (${files.length} files)`)
  t.same(lines.map((l) => (JSON.parse(l) as { messageId: string }).messageId), ids, 'every event once, in order, across the files')
  for (const f of files) {
    const { size } = await stat(join(dir, f))
    t.ok(size <= 1024 + 1000, `${f} (${size} bytes) is about maxBytes`)
  }
})

t.test('maxFiles prunes the oldest rotated files', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'events.ndjson')
  await writeFile(join(dir, 'unrelated.txt'), 'keep me')
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'f', type: 'file', settings: { path, maxBytes: 1024, maxFiles: 2 }, delivery: { batch: { maxEvents: 2, maxWaitMs: 5 }, concurrency: 1 } }],
  })
  const ids: string[] = []
  const pad = 'p'.repeat(300)
  for (let i = 0; i < 40; i++) ids.push((await router.track({ userId: 'u', event: 'E', properties: { i, pad } })).messageId)
  await router.close({ timeoutMs: 5000 })
  const { files, lines } = await allLines(dir, 'events.ndjson')
  t.equal(files.length, 3, 'two rotated files and the current one')
  const kept = lines.map((l) => (JSON.parse(l) as { messageId: string }).messageId)
  t.ok(kept.length > 0 && kept.length < 40)
  t.same(kept, ids.slice(40 - kept.length), 'what is kept is the newest events, contiguous')
  t.equal(await readFile(join(dir, 'unrelated.txt'), 'utf8'), 'keep me', 'other files are left alone')
})

t.test('a write failure is retryable: events are written once the path works', async (t) => {
  const dir = await tempDir(t)
  // A regular file where the folder should be: mkdir fails with ENOTDIR/EEXIST.
  const blocker = join(dir, 'blocked')
  await writeFile(blocker, 'not a folder')
  const path = join(blocker, 'events.ndjson')
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'f', type: 'file', settings: { path }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 20, maxDelayMs: 40, maxAttempts: 1000 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const retries: Array<{ message: string }> = []
  router.events.on('retry', (e: { message: string }) => retries.push(e))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => retries.length >= 2, 'retries')
  t.match(retries[0]!.message, /cannot write .*events\.ndjson: E(NOTDIR|EXIST)/)
  t.equal(router.deadLetters.count(), 0, 'not dead-lettered')
  t.equal(router.stats().destinations.f!.held, 1)
  await rm(blocker)
  await until(() => router.stats().destinations.f!.delivered === 1, 'delivery after the fix')
  await router.close({ timeoutMs: 1000 })
  t.equal((await readFile(path, 'utf8')).trim().split('\n').length, 1)
})

t.test('many rotations in quick succession never rename onto an earlier rotated file', async (t) => {
  const dir = await tempDir(t)
  const ctx = {
    settings: { path: join(dir, 'e.ndjson'), maxBytes: 1024, maxFiles: 100_000 },
    state: {} as Record<string, unknown>,
    logger: quiet,
    http: undefined as never,
    destination: 'f',
    signal: new AbortController().signal,
    attempt: 1,
  }
  await fileDestination.setup!(ctx)
  // Every batch is bigger than half of maxBytes: each write rotates.
  const sends = Array.from({ length: 200 }, (_, i) => fileDestination.send([{ i, pad: 'x'.repeat(600) } as never], ctx))
  await Promise.all(sends)
  await fileDestination.close!(ctx)
  const { lines } = await allLines(dir, 'e.ndjson')
  t.same(lines.map((l) => (JSON.parse(l) as { i: number }).i), Array.from({ length: 200 }, (_, i) => i), 'all 200 lines, in order')
})
