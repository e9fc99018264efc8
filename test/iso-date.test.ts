/**
 * parseIsoDate is Date.parse with a fast path for the ISO forms clients send; it must
 * never differ from Date.parse, on the fast path, at its edges or off it.
 */
import t from 'tap'
import { parseIsoDate } from '../src/iso-date.js'

let seed = 7
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
const int = (n: number) => Math.floor(rand() * n)
const pad = (n: number, w: number) => String(n).padStart(w, '0')

/** A timestamp in one of the shapes the fast path reads, with fields a little out of range now and then. */
function generated(): string {
  const year = rand() < 0.7 ? 1960 + int(120) : int(10_000)
  const month = rand() < 0.97 ? 1 + int(12) : int(14)
  const day = rand() < 0.9 ? 1 + int(28) : int(33)
  const hour = rand() < 0.97 ? int(24) : 23 + int(3)
  const minute = rand() < 0.98 ? int(60) : 59 + int(3)
  const second = rand() < 0.98 ? int(60) : 59 + int(3)
  const fraction = ['', '.' + pad(int(1000), 3), '.' + int(10), '.' + pad(int(100), 2), '.' + pad(int(10_000), 4), '.'][int(6)]
  const zone = ['Z', 'Z', 'Z', `+${pad(int(24), 2)}:${pad(int(60), 2)}`, `-${pad(int(24), 2)}:${pad(int(60), 2)}`, '+24:00', '-00:60', '+0100', 'z', ''][int(10)]
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}${zone}`
}

/** One character replaced, removed or inserted. */
function mutated(s: string): string {
  const at = int(s.length + 1)
  const c = '0123456789-:.TZtz+ x'[int(20)]
  switch (int(3)) {
    case 0: return s.slice(0, at) + c + s.slice(at + 1)
    case 1: return s.slice(0, at) + s.slice(at + 1)
    default: return s.slice(0, at) + c + s.slice(at)
  }
}

const same = (s: string) => Object.is(parseIsoDate(s), Date.parse(s))

t.test('equals Date.parse on generated timestamps and one-character mutations of them', async (t) => {
  const differ: string[] = []
  const fastForm = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)$/
  let fast = 0
  for (let i = 0; i < 40_000; i++) {
    const s = generated()
    if (fastForm.test(s) && !Number.isNaN(Date.parse(s))) fast++
    if (!same(s)) differ.push(s)
    const m = mutated(s)
    if (!same(m)) differ.push(m)
  }
  t.same(differ.slice(0, 10), [], 'no string parses differently')
  t.ok(fast > 10_000, `many are valid dates in the fast path's form (${fast})`)
})

t.test('equals Date.parse at the edges of the calendar and of the format', async (t) => {
  const edges = [
    '1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '0000-01-01T00:00:00Z', '0000-03-01T00:00:00Z',
    '9999-12-31T23:59:59.999Z', '2000-02-29T12:00:00Z', '1900-02-29T12:00:00Z', '2024-02-30T00:00:00Z', '2025-02-31T00:00:00Z',
    '2025-04-31T00:00:00Z', '2025-05-01T24:00:00Z', '2025-05-01T12:00:60Z', '2025-05-01T12:00:00.Z', '2025-05-01T12:00:00.1Z',
    '2025-05-01T12:00:00.12Z', '2025-05-01T12:00:00.1234567890123Z', '2025-05-01T12:00:00+01:00', '2025-05-01T12:00:00-00:00',
    '2025-05-01T12:00:00+23:59', '2025-05-01T12:00:00-23:59', '2025-05-01T12:00:00+24:00', '2025-05-01T12:00:00+0100',
    '2025-05-01t12:00:00Z', '2025-05-01T12:00:00z', '2025-05-01 12:00:00Z', '2025-05-01T12:00Z', '2025-05-01T12:00:00',
    '2025-05-01', '+002025-05-01T12:00:00Z', '-000001-01-01T00:00:00Z', '2025-00-01T00:00:00Z', '2025-13-01T00:00:00Z',
    '2025-05-00T00:00:00Z', '2025-05-32T00:00:00Z', '2025-05-01T12:00:00.000Z ', ' 2025-05-01T12:00:00.000Z', '２025-05-01T12:00:00Z',
    '2025-05-01T12:00:00.000+01:00x', 'Thu, 01 May 2025 12:00:00 GMT', '', 'not a date', '20250501T120000Z',
  ]
  for (const s of edges) t.ok(same(s), JSON.stringify(s))
})
