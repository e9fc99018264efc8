// Runs every example in docs/dsl.md: an ```fp block followed by two ```json blocks
// (input event, expected output; null = dropped), and the ```fp-error block against
// the ```text block after it. Also checks that every function and every error code
// is documented.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { checkMapping, compileMapping, DslCompileError, DSL_ERROR_CODES, DSL_FUNCTIONS, formatDiagnostic } from '../dsl/index.js'

const doc = readFileSync(new URL('../docs/dsl.md', import.meta.url), 'utf8')
const blocks = [...doc.matchAll(/^```([\w-]*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, text: m[2]!, line: doc.slice(0, m.index).split('\n').length }))

const examples: Array<{ source: string; input: unknown; output: unknown; line: number }> = []
const errorExamples: Array<{ source: string; expected: string; line: number }> = []
for (let i = 0; i < blocks.length; i++) {
  const b = blocks[i]!
  if (b.lang === 'fp') {
    const input = blocks[i + 1]
    const output = blocks[i + 2]
    if (input?.lang !== 'json' || output?.lang !== 'json') throw new Error(`docs/dsl.md:${b.line}: an fp block needs two json blocks after it`)
    examples.push({ source: b.text, input: JSON.parse(input.text), output: JSON.parse(output.text), line: b.line })
    i += 2
  } else if (b.lang === 'fp-error') {
    const text = blocks[i + 1]
    if (text?.lang !== 'text') throw new Error(`docs/dsl.md:${b.line}: an fp-error block needs a text block after it`)
    errorExamples.push({ source: b.text, expected: text.text, line: b.line })
    i += 1
  }
}

t.ok(examples.length >= 12, `${examples.length} examples`)

for (const ex of examples) {
  t.test(`docs/dsl.md:${ex.line}`, async (t) => {
    const { errors, warnings } = checkMapping(ex.source)
    t.same(errors.map((e) => formatDiagnostic(e)), [], 'compiles')
    t.same(warnings.map((e) => formatDiagnostic(e)), [], 'no warnings')
    t.same(compileMapping(ex.source)(ex.input), ex.output)
  })
}

for (const ex of errorExamples) {
  t.test(`docs/dsl.md:${ex.line} (errors)`, async (t) => {
    const err = t.throws(() => compileMapping(ex.source)) as DslCompileError
    t.ok(err instanceof DslCompileError)
    t.equal(`${err.errors.map((d) => formatDiagnostic(d)).join('\n')}\n`, ex.expected)
  })
}

t.test('every function has an example', async (t) => {
  const code = examples.map((e) => e.source).join('\n')
  for (const name of DSL_FUNCTIONS.keys()) t.match(code, new RegExp(`\\b${name}\\(`), `${name} is used in an example`)
})

t.test('every error code is documented', async (t) => {
  for (const code of Object.keys(DSL_ERROR_CODES)) t.match(doc, `| \`${code}\` |`, code)
  const documented = [...doc.matchAll(/^\| `(DSL_\w+)` \|/gm)].map((m) => m[1]!)
  for (const code of documented) t.ok(Object.hasOwn(DSL_ERROR_CODES, code), `${code} exists`)
})
