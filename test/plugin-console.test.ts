import t from 'tap'
import { createRouter, type Logger } from '../src/index.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/**
 * Capture what is written to a process stream while `fn` runs. Writes that are not
 * ours (tap's own output on stdout) are passed through untouched.
 */
async function capture(stream: NodeJS.WriteStream, fn: () => Promise<void>): Promise<string> {
  let out = ''
  const original = stream.write
  stream.write = function (chunk: unknown, ...rest: unknown[]): boolean {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString()
    if (s.includes('"console-test"')) {
      out += s
      return true
    }
    return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest)
  } as typeof stream.write
  try {
    await fn()
  } finally {
    stream.write = original
  }
  return out
}

t.test('writes each event as one JSON line to stdout', async (t) => {
  const router = createRouter({ logger: quiet, destinations: [{ name: 'c', type: 'console', delivery: { batch: { maxWaitMs: 5 } } }] })
  const ids: string[] = []
  const out = await capture(process.stdout, async () => {
    for (let i = 0; i < 3; i++) ids.push((await router.track({ userId: 'u', event: 'console-test', properties: { i } })).messageId)
    await router.close({ timeoutMs: 2000 })
  })
  const lines = out.split('\n')
  t.equal(lines.pop(), '', 'ends with a newline')
  t.equal(lines.length, 3, 'one line per event')
  const events = lines.map((l) => JSON.parse(l) as { messageId: string; event: string })
  t.same(events.map((e) => e.messageId), ids)
  t.equal(events[0]!.event, 'console-test')
  t.equal(router.stats().destinations.c!.delivered, 3)
})

t.test('stream: stderr, pretty: true', async (t) => {
  const router = createRouter({ logger: quiet, destinations: [{ name: 'c', type: 'console', settings: { stream: 'stderr', pretty: true }, delivery: { batch: { maxWaitMs: 5 } } }] })
  let stdout = ''
  const stderr = await capture(process.stderr, async () => {
    stdout = await capture(process.stdout, async () => {
      await router.track({ userId: 'u', event: 'console-test' })
      await router.close({ timeoutMs: 2000 })
    })
  })
  t.equal(stdout, '', 'nothing on stdout')
  t.ok(stderr.split('\n').length > 3, 'indented over several lines')
  t.match(JSON.parse(stderr), { type: 'track', event: 'console-test', userId: 'u' })
})
