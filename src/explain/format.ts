/** The terminal form of a report: one table (destinations × classes), then the why of every cell that is not "never". */
import type { ClassVerdict, Report } from './types.js'

/** `raw`, `raw?` (possibly), `hashed`, `raw?/hashed`, with `+category` when every flow needs a field-level consent. */
export function cellText(cell: ClassVerdict): string {
  if (cell.treatments.length === 0) return 'never'
  const parts = cell.treatments.map((t) => (cell.flows.some((f) => f.treatment === t && f.certain) ? t : `${t}?`))
  const shared = cell.flows.map((f) => f.requires).reduce<string[] | undefined>((acc, r) => (acc === undefined ? [...r] : acc.filter((c) => r.includes(c))), undefined) ?? []
  return parts.join('/') + shared.map((c) => ` +${c}`).join('')
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

export interface FormatOptions {
  /** Flows listed per cell in the details. @default 4 */
  maxFlows?: number
}

export function formatReport(report: Report, options: FormatOptions = {}): string {
  const maxFlows = options.maxFlows ?? 4
  const header = ['destination', 'consent', ...report.classes]
  const rows = report.destinations.map((d) => [
    `${d.name}${d.name === d.type ? '' : ` (${d.type})`}`,
    !d.enabled ? 'disabled' : d.consent.categories.length ? d.consent.categories.join(d.consent.mode === 'any' ? '|' : '+') + (d.consent.blockedByGpc ? ', !gpc' : '') : '-',
    ...report.classes.map((c) => cellText(d.classes[c])),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cols: string[]) => cols.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd()
  const out: string[] = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)]
  out.push('', 'raw/hashed/masked: can arrive so; "?": possibly (see why); +cat: only with that consent category; !gpc: never with a GPC signal')
  for (const d of report.destinations) {
    out.push('', `${d.name} (${d.type}) — ${d.enabled ? `payload: ${d.shape}; consent: ${d.consent.text}` : 'disabled'}`)
    for (const n of d.notes) out.push(`  note: ${n}`)
    for (const c of report.classes) {
      const cell = d.classes[c]
      if (cell.treatments.length === 0) continue
      out.push(`  ${c}: ${cell.verdict}`)
      const ordered = [...cell.flows].sort((a, b) => Number(b.certain) - Number(a.certain))
      for (const f of ordered.slice(0, maxFlows)) {
        const arrow = f.to !== undefined && f.to !== f.from ? ` → ${f.to}` : ''
        const req = f.requires.length ? ` [needs ${f.requires.join(', ')}]` : ''
        out.push(`    ${f.certain ? '' : 'possibly '}${f.treatment} from ${f.from}${arrow}${req}`)
        for (const r of [...new Set(f.reasons)].slice(0, 4)) out.push(`      - ${r}`)
      }
      if (ordered.length > maxFlows) out.push(`    … and ${ordered.length - maxFlows} more ways (--json lists them all)`)
    }
  }
  if (report.notes.length) {
    out.push('', 'notes:')
    for (const n of report.notes) out.push(`  - ${n}`)
  }
  if (report.deny.rules.length) {
    out.push('', `deny rules: ${report.deny.rules.length}, violated: ${new Set(report.deny.violations.map((v) => v.rule)).size}`)
    for (const v of report.deny.violations) {
      out.push(`  FORBIDDEN ${v.class}:${v.treatment} -> ${v.destination}${v.certain ? '' : ' (possibly)'} — rule "${v.rule}" (${v.origin}); from ${v.from}${v.reasons[0] ? `: ${v.reasons[0]}` : ''}`)
    }
  }
  return out.join('\n')
}
