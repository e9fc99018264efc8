/**
 * file: append events to an NDJSON file, rotating it by size. Writes are serialized
 * per destination, so concurrent batches never interleave lines, and every batch is
 * written with one append.
 */
import { access, mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import Type from 'typebox'
import { RetryableError } from '../../src/errors.js'
import { defineDestination } from '../../src/plugin.js'
import { mentionsSubject, toStoredSubject } from '../../src/privacy/subject.js'

export const FileSettings = Type.Object({
  path: Type.String({ minLength: 1, default: 'data/events.ndjson', description: 'File to append to; relative paths are from the working directory. Folders are created.' }),
  maxBytes: Type.Integer({ minimum: 1024, default: 104_857_600, description: 'Rotate when the file would grow past this size (default 100 MiB).' }),
  maxFiles: Type.Integer({ minimum: 0, default: 10, description: 'Rotated files to keep (oldest are deleted); 0 keeps none.' }),
}, { additionalProperties: false })

interface Sink {
  path: string
  handle: FileHandle | undefined
  size: number
  chain: Promise<void>
}

async function openSink(sink: Sink): Promise<FileHandle> {
  if (sink.handle) return sink.handle
  await mkdir(dirname(sink.path), { recursive: true })
  const handle = await open(sink.path, 'a')
  sink.size = (await handle.stat()).size
  sink.handle = handle
  return handle
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

async function rotate(sink: Sink, maxFiles: number): Promise<void> {
  await sink.handle?.close()
  sink.handle = undefined
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  // Two rotations within one millisecond must not rename onto (and lose) the first.
  let target = `${sink.path}.${stamp}`
  for (let i = 1; await exists(target); i++) target = `${sink.path}.${stamp}.${String(i).padStart(4, '0')}`
  await rename(sink.path, target)
  const dir = dirname(sink.path)
  const prefix = basename(sink.path) + '.'
  // Only files this plugin named: a user's events.ndjson.bak beside it is not ours.
  const ours = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(\.\d{4,})?$/
  const rotated = (await readdir(dir)).filter((f) => f.startsWith(prefix) && ours.test(f.slice(prefix.length))).sort()
  for (const f of rotated.slice(0, Math.max(0, rotated.length - maxFiles))) await rm(join(dir, f), { force: true })
}

export default defineDestination({
  name: 'file',
  version: '0.1.0',
  description: 'Append events to a local NDJSON file with size-based rotation.',
  settings: FileSettings,
  batch: { maxEvents: 500, maxBytes: 1_000_000, maxWaitMs: 500 },
  setup(ctx) {
    ctx.state.sink = { path: resolve(ctx.settings.path), handle: undefined, size: 0, chain: Promise.resolve() } satisfies Sink
  },
  send(events, ctx) {
    const sink = ctx.state.sink as Sink
    const data = Buffer.from(events.map((e) => JSON.stringify(e)).join('\n') + '\n')
    const write = async () => {
      try {
        let handle = await openSink(sink)
        if (sink.size > 0 && sink.size + data.length > ctx.settings.maxBytes) {
          await rotate(sink, ctx.settings.maxFiles)
          handle = await openSink(sink)
        }
        await handle.write(data)
        sink.size += data.length
      } catch (err) {
        // Disk full, permissions, a removed folder: all may be fixed without a restart.
        await sink.handle?.close().catch(() => {})
        sink.handle = undefined
        throw new RetryableError(`cannot write ${sink.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    }
    const next = sink.chain.then(write)
    sink.chain = next.catch(() => {})
    return next
  },
  /**
   * Rewrite the file and its rotated siblings without the lines that mention the
   * subject (any id as a value, or the email raw or hashed). Runs in the write chain,
   * so no batch is appended half-way through; each file is replaced atomically.
   */
  deleteUser(ids, ctx) {
    const sink = ctx.state.sink as Sink
    const subject = toStoredSubject(ids, 'file deleteUser')
    const run = async () => {
      await sink.handle?.close()
      sink.handle = undefined
      const dir = dirname(sink.path)
      const prefix = basename(sink.path)
      const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f === prefix || f.startsWith(prefix + '.'))
      let removed = 0
      for (const f of files) {
        const path = join(dir, f)
        const text = await readFile(path, 'utf8')
        const lines = text.split('\n')
        const kept = lines.filter((line) => {
          if (line === '') return true
          let ev: unknown
          try {
            ev = JSON.parse(line)
          } catch {
            return true
          }
          return !mentionsSubject(ev, subject)
        })
        if (kept.length === lines.length) continue
        removed += lines.length - kept.length
        const tmp = `${path}.deleting`
        await writeFile(tmp, kept.join('\n'))
        await rename(tmp, path)
      }
      ctx.logger.info({ lines: removed }, 'deleteUser: lines removed')
    }
    const next = sink.chain.then(run)
    sink.chain = next.catch(() => {})
    return next
  },
  async close(ctx) {
    const sink = ctx.state.sink as Sink | undefined
    if (!sink) return
    await sink.chain
    await sink.handle?.close()
    sink.handle = undefined
  },
})
