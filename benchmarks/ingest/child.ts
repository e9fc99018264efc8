/**
 * What both server children share: listen on loopback, count requests, and answer the
 * orchestrator over IPC. CPU time is sampled inside the server process itself
 * (process.cpuUsage), so it is the server's cost alone, not the load generator's.
 */
import { writeFileSync } from 'node:fs'
import { createServer, type RequestListener } from 'node:http'
import { Session } from 'node:inspector/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

export type ToChild = { type: 'mark'; id: number; profile?: 'start' | 'stop' } | { type: 'drain'; id: number } | { type: 'exit' }

export type FromChild =
  | { type: 'ready'; port: number }
  | { type: 'mark'; id: number; cpuMicros: number; requests: number; rssBytes: number }
  | { type: 'drain'; id: number; info: Record<string, number> }

export function serve(listener: RequestListener, drain: () => Promise<Record<string, number>> = async () => ({})): void {
  if (!process.send) throw new Error('start this file through benchmarks/ingest/run.ts (it needs an IPC channel)')
  const send = (m: FromChild) => process.send!(m)
  let requests = 0
  const server = createServer(listener)
  server.on('request', () => void requests++)
  server.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (server.address() as AddressInfo).port }))
  // BENCH_PROFILE=<dir>: a CPU profile of each measured window only (not start-up or
  // warm-up), written as <dir>/<server>-<n>.cpuprofile.
  const profileDir = process.env.BENCH_PROFILE
  const session = profileDir ? new Session() : undefined
  session?.connect()
  let profiles = 0
  process.on('message', async (m: ToChild) => {
    if (m.type === 'mark') {
      // Sample first: profiler start/stop and writing the profile stay outside the window.
      const c = process.cpuUsage()
      send({ type: 'mark', id: m.id, cpuMicros: c.user + c.system, requests, rssBytes: process.memoryUsage.rss() })
      if (session && m.profile === 'start') {
        await session.post('Profiler.enable')
        await session.post('Profiler.setSamplingInterval', { interval: 200 })
        await session.post('Profiler.start')
      } else if (session && m.profile === 'stop') {
        const { profile } = await session.post('Profiler.stop')
        writeFileSync(join(profileDir!, `${process.env.BENCH_SERVER ?? 'server'}-${++profiles}.cpuprofile`), JSON.stringify(profile))
      }
    } else if (m.type === 'drain') {
      drain().then((info) => send({ type: 'drain', id: m.id, info }))
    } else if (m.type === 'exit') {
      session?.disconnect()
      server.closeAllConnections()
      server.close()
      setImmediate(() => process.exit(0))
    }
  })
  process.on('disconnect', () => process.exit(0))
}
