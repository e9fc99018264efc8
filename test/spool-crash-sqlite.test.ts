/**
 * kill -9 under load with the SQLite spool: every event that got a 200 is delivered
 * after the restart. Duplicates come only from the in-flight window — events sent to
 * the destination whose ack had not reached the file — so they are at most the
 * destination's maxBufferedEvents, and they are counted.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RouterOptions } from '../src/config.js'
import { startChild, startLoad, startSink, until } from './fixtures/spool/harness.js'

t.test('kill -9 under load, restart on the same file: 0 lost, duplicates within the in-flight window', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-crash-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A slow destination (40 ms a batch) so a backlog is spooled when the process dies.
  const sink = await startSink(40)
  t.teardown(() => sink.close())
  const maxBuffered = 500
  const options: RouterOptions = {
    spool: { type: 'sqlite', path: join(dir, 'spool.db') },
    destinations: [{ name: 'sink', type: 'webhook', settings: { url: sink.url }, delivery: { maxBufferedEvents: maxBuffered, concurrency: 4, batch: { maxEvents: 50, maxWaitMs: 5 } } }],
  }
  let child = await startChild(options)
  t.teardown(() => child.kill())
  let port: number | undefined = child.port
  const load = startLoad({ ports: () => (port ? [port] : []), concurrency: 16, batchSize: 10, maxRequests: 3000, prefix: 'crash' })

  // Kill it mid-run, once the destination is busy and requests are in flight.
  await until(() => sink.seen.size >= 3000 && load.acked.size >= 6000, 'load under way')
  port = undefined
  await child.kill()
  const ackedBeforeKill = load.acked.size
  const deliveredBeforeKill = sink.seen.size
  t.ok(ackedBeforeKill > deliveredBeforeKill, `killed with events answered but not yet delivered (${ackedBeforeKill} acked, ${deliveredBeforeKill} delivered)`)

  child = await startChild(options)
  port = child.port
  await until(() => load.acked.size >= ackedBeforeKill + 2000, 'load on the restarted process')
  await load.stop()
  t.ok(load.acked.size > ackedBeforeKill, 'the restarted process took more load')

  await until(() => [...load.acked].every((id) => sink.seen.has(id)), 'every acked event delivered', 60_000)
  const lost = [...load.acked].filter((id) => !sink.seen.has(id))
  t.equal(lost.length, 0, '0 events lost of those answered 200')
  const dupes = sink.duplicates()
  t.comment(`acked ${load.acked.size} events in ${load.sent} requests (${load.failed} failed at the kill); delivered ${sink.seen.size} distinct; duplicates ${dupes}`)
  t.ok(dupes <= maxBuffered, `duplicates (${dupes}) within the in-flight window (maxBufferedEvents ${maxBuffered})`)
  for (const [id, n] of sink.seen) if (n > 2) t.fail(`${id} delivered ${n} times`)
  await child.stop()
})
