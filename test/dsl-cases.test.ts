// Runs the language-neutral cases in test/fixtures/dsl/cases/<group>/<name>.json:
// { mapping, input, output } (output null: the event is dropped) or
// { mapping, input, error: "DSL_Sxxx" }, optionally with "warning": "DSL_Wxxx".
// Without "warning", a case must compile without warnings.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkMapping, compileMapping, DslCompileError, DSL_ERROR_CODES } from '../dsl/index.js'

const root = new URL('./fixtures/dsl/cases/', import.meta.url).pathname

interface Case {
  description?: string
  mapping: string
  input: unknown
  output?: unknown
  error?: string
  warning?: string
}

const groups = readdirSync(root).sort()
const seenCodes = new Set<string>()

for (const group of groups) {
  t.test(group, async (t) => {
    for (const file of readdirSync(join(root, group)).filter((f) => f.endsWith('.json')).sort()) {
      const c = JSON.parse(readFileSync(join(root, group, file), 'utf8')) as Case
      t.test(file.replace(/\.json$/, ''), async (t) => {
        if (c.error) {
          seenCodes.add(c.error)
          const err = t.throws(() => compileMapping(c.mapping)) as unknown
          t.ok(err instanceof DslCompileError, 'a DslCompileError')
          const e = err as DslCompileError
          t.ok(e.errors.some((d) => d.code === c.error), `reports ${c.error} (got ${e.errors.map((d) => d.code).join(', ')})`)
          for (const d of e.errors) {
            t.ok(d.line >= 1 && d.column >= 1, `${d.code} has a line and column`)
            t.match(d.excerpt, /\^/, `${d.code} has a caret excerpt`)
          }
          return
        }
        const { errors, warnings } = checkMapping(c.mapping)
        t.same(errors, [], 'no errors')
        if (c.warning) {
          seenCodes.add(c.warning)
          t.ok(warnings.some((w) => w.code === c.warning), `warns ${c.warning} (got ${warnings.map((w) => w.code).join(', ') || 'none'})`)
        } else t.same(warnings.map((w) => `${w.code} ${w.message}`), [], 'no warnings')
        const out = compileMapping(c.mapping)(c.input)
        t.same(out, c.output ?? null)
        // JSON-exact: no undefined, no prototype surprises.
        t.equal(JSON.stringify(out), JSON.stringify(c.output ?? null))
      })
    }
  })
}

t.test('every compile-time code has a case', async (t) => {
  const testable = Object.keys(DSL_ERROR_CODES).filter((c) => !/^DSL_(R1|S106|S209|T110)/.test(c))
  for (const code of testable) t.ok(seenCodes.has(code), `${code} has a case`)
})
