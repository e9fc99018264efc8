/**
 * Summarize a V8 .cpuprofile: self and inclusive time per function, and self time by
 * origin (our code, each npm package, Node internals, GC).
 *
 *   node --import @swc-node/register/esm-register benchmarks/ingest/profile-summary.ts <file.cpuprofile>
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

function origin(url: string, root: string): string {
  if (!url) return '(vm / native)'
  if (url.startsWith('node:')) return 'node internals'
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (path.startsWith(root + '/src/') || path.startsWith(root + '/plugins/')) return 'firstparty'
  if (path.startsWith(root + '/benchmarks/')) return 'benchmark harness'
  return 'other'
}

export function summarizeProfile(file: string, root: string, top = 30): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (n: ProfileNode) => {
    const f = n.callFrame
    const where = f.url ? `${f.url.replace(`file://${root}/`, '').replace(/^.*\/node_modules\//, '')}:${f.lineNumber + 1}` : ''
    return `${f.functionName || '(anonymous)'} ${where}`.trim()
  }
  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  const originOf = new Map<string, string>()
  let total = 0
  let idle = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0
    const n = byId.get(p.samples[i]!)!
    const name = n.callFrame.functionName
    if (name === '(idle)') {
      idle += dt
      continue
    }
    total += dt
    const k = key(n)
    self.set(k, (self.get(k) ?? 0) + dt)
    const o = name === '(garbage collector)' ? 'GC' : name === '(program)' ? '(program)' : origin(n.callFrame.url, root)
    originOf.set(k, o)
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const a = byId.get(id)!
      const ak = key(a)
      if (seen.has(ak)) continue
      seen.add(ak)
      originOf.set(ak, origin(a.callFrame.url, root))
      incl.set(ak, (incl.get(ak) ?? 0) + dt)
    }
  }
  const ms = (us: number) => (us / 1000).toFixed(0).padStart(7)
  const pc = (us: number) => ((us / total) * 100).toFixed(1).padStart(5) + ' %'
  const lines: string[] = []
  lines.push(`busy ${ms(total)} ms, idle ${ms(idle)} ms`)
  lines.push('\nself time by origin:')
  for (const [o, t] of [...byOrigin].sort((a, b) => b[1] - a[1])) lines.push(`  ${pc(t)} ${ms(t)} ms  ${o}`)
  lines.push(`\ntop ${top} functions by self time:`)
  for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pc(t)} ${ms(t)} ms  [${originOf.get(k)}] ${k}`)
  lines.push('\nfirstparty functions by self time:')
  for (const [k, t] of [...self].filter(([k]) => originOf.get(k) === 'firstparty').sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`  ${pc(t)} ${ms(t)} ms  ${k}`)
  lines.push('\nfirstparty functions by inclusive time:')
  for (const [k, t] of [...incl].filter(([k]) => originOf.get(k) === 'firstparty').sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`  ${pc(t)} ${ms(t)} ms  ${k}`)
  return lines.join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2]
  if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [root]')
  console.log(summarizeProfile(file, process.argv[3] ?? process.cwd()))
}
