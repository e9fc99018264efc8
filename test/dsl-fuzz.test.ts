// The lexer, parser, checker and code generator on random and mutated input
// (seeded, so a failure reproduces): only DSL errors come out — a DslCompileError
// at compile time, a DslRuntimeError at run time — never another exception type,
// and nothing hangs. Each case is bounded by input size (at most 4 KB), not by time.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { compileCondition, compileMapping, DslCompileError, DslRuntimeError, lex, parse } from '../dsl/index.js'

const CASES = 5000
const MAX_LENGTH = 4096

function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

const examples = ['ga4.fp', 'meta-capi.fp'].map((f) => readFileSync(new URL(`../dsl/examples/${f}`, import.meta.url), 'utf8'))
const casesDir = new URL('./fixtures/dsl/cases/', import.meta.url).pathname
const corpus = [
  ...examples,
  ...readdirSync(casesDir).flatMap((g) => readdirSync(join(casesDir, g)).map((f) => (JSON.parse(readFileSync(join(casesDir, g, f), 'utf8')) as { mapping: string }).mapping)),
]
const TOKENS = [
  'on', 'track', 'page', 'any', 'default', 'when', 'let', 'drop', 'if', 'else', 'and', 'or', 'not', 'in', 'true', 'false', 'null',
  'event', 'event.properties', '.x', '[0]', '[', ']', '{', '}', '(', ')', ',', ':', ';', '=', '==', '!=', '<', '>=', '+', '-', '*', '/',
  '%', '&', '?', '??', '=>', '!', '...', '"s"', "'q'", '"\\u00e9"', '"unterminated', '1', '2.5e3', '0x1', '__proto__', 'constructor',
  'map(', 'filter(', 'sum(', 'lower(', 'hashEmail(', 'jsonlogic(', '{"var": "a"}', 'x =>', '(a, b) =>', '//', '/*', '*/', '\n', ' ', '\t',
  '`', '@', '#', '\\', '\u2028', '\u0000', '😀',
]
const sample = JSON.parse(readFileSync(new URL('./fixtures/dsl/events/order-completed.json', import.meta.url), 'utf8')) as unknown

function generate(rand: () => number, i: number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!
  const kind = i % 4
  if (kind === 0) {
    // Random characters, weighted towards ASCII punctuation.
    const n = Math.floor(rand() * 300)
    let s = ''
    for (let j = 0; j < n; j++) s += rand() < 0.9 ? String.fromCharCode(32 + Math.floor(rand() * 95)) : String.fromCharCode(Math.floor(rand() * 0xffff))
    return s
  }
  if (kind === 1) {
    // Token soup.
    const n = Math.floor(rand() * 120)
    const parts: string[] = []
    for (let j = 0; j < n; j++) parts.push(pick(TOKENS))
    return parts.join(rand() < 0.5 ? ' ' : '')
  }
  // Mutations of real mappings: delete, duplicate, swap or insert slices and tokens.
  let s = pick(corpus)
  const edits = 1 + Math.floor(rand() * 6)
  for (let e = 0; e < edits; e++) {
    const a = Math.floor(rand() * (s.length + 1))
    const b = Math.min(s.length, a + Math.floor(rand() * 40))
    switch (Math.floor(rand() * 4)) {
      case 0:
        s = s.slice(0, a) + s.slice(b)
        break
      case 1:
        s = s.slice(0, b) + s.slice(a, b) + s.slice(b)
        break
      case 2:
        s = s.slice(0, a) + pick(TOKENS) + s.slice(a)
        break
      default: {
        const c = Math.floor(rand() * (s.length + 1))
        s = s.slice(0, c) + s.slice(a, b) + s.slice(c)
      }
    }
  }
  return s.slice(0, MAX_LENGTH)
}

t.test(`${CASES} random and mutated mappings: only DSL errors`, async (t) => {
  const rand = prng(0x5eed)
  let compiled = 0
  let rejected = 0
  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    const src = generate(rand, i)
    try {
      const { tokens } = lex(src)
      if (tokens[tokens.length - 1]?.type !== 'eof') throw new Error('the token list does not end with eof')
      const { errors } = parse(src)
      for (const d of errors) {
        if (!(d.line >= 1 && d.column >= 1) || !d.excerpt.includes('^')) throw new Error(`bad diagnostic ${JSON.stringify(d)}`)
      }
    } catch (err) {
      failures.push(`case ${i} (lex/parse): ${(err as Error).stack}\n${JSON.stringify(src)}`)
      continue
    }
    let mapping
    try {
      mapping = compileMapping(src)
      compiled++
    } catch (err) {
      if (err instanceof DslCompileError) {
        rejected++
        continue
      }
      failures.push(`case ${i} (compile): ${(err as Error).stack}\n${JSON.stringify(src)}`)
      continue
    }
    for (const ev of [sample, {}, { type: 'track', event: 'Order Completed', properties: { products: 'x' } }]) {
      try {
        const out = mapping(ev)
        if (out !== null) JSON.stringify(out)
      } catch (err) {
        if (!(err instanceof DslRuntimeError)) failures.push(`case ${i} (run): ${(err as Error).stack}\n${JSON.stringify(src)}`)
      }
    }
    if (failures.length > 5) break
  }
  t.same(failures, [], 'no other exception type')
  t.ok(compiled > 100, `some mutants still compile and run (${compiled})`)
  t.ok(rejected > 1000, `most are rejected with DSL errors (${rejected})`)
})

t.test('random conditions: only DSL errors', async (t) => {
  const rand = prng(42)
  const failures: string[] = []
  for (let i = 0; i < 1000; i++) {
    const src = generate(rand, 1 + (i % 2) * 2).slice(0, 400)
    try {
      compileCondition(src)(sample)
    } catch (err) {
      if (!(err instanceof DslCompileError) && !(err instanceof DslRuntimeError)) failures.push(`${(err as Error).stack}\n${JSON.stringify(src)}`)
    }
  }
  t.same(failures, [])
})

t.test('pathological sizes are refused quickly, not by a stack overflow', async (t) => {
  const sources = [
    'on any { v = ' + Array(50_000).fill('1').join(' + ') + ' }',
    'on any { v = ' + '('.repeat(50_000) + '1' + ')'.repeat(50_000) + ' }',
    'on any { v = ' + '['.repeat(50_000) + ' }',
    'on any { v = ' + '-'.repeat(50_000) + '1 }',
    'on any { v = event' + '.a'.repeat(40_000) + ' }',
    'on any { ' + 'if true { '.repeat(20_000) + ' }',
    'on any { v = ' + Array(40_000).fill('a').join(' ?? ') + ' }',
    '"'.repeat(300_000),
  ]
  for (const src of sources) {
    const err = t.throws(() => compileMapping(src)) as unknown
    t.ok(err instanceof DslCompileError, `${src.slice(0, 24)}… → ${(err as DslCompileError).code}`)
    t.ok(['DSL_S205', 'DSL_S106'].includes((err as DslCompileError).code))
  }
})
