import t from 'tap'
import { readFileSync } from 'node:fs'
import { CONFIG_ERRORS, DELETION_ERRORS, DELIVERY_ERRORS, HTTP_ERRORS } from '../src/index.js'

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')

t.test('docs/errors.md lists every HTTP error code with its status', async (t) => {
  for (const [code, spec] of Object.entries(HTTP_ERRORS)) {
    t.match(doc, new RegExp(`\\| \`${code}\` \\| ${spec.status} \\|`), `${code} (${spec.status}) is documented`)
  }
})

t.test('docs/errors.md lists every config, delivery and deletion error code', async (t) => {
  for (const code of [...Object.keys(CONFIG_ERRORS), ...Object.keys(DELIVERY_ERRORS), ...Object.keys(DELETION_ERRORS)]) {
    t.match(doc, new RegExp(`\\| \`${code}\` \\|`), `${code} is documented`)
  }
})

t.test('docs/errors.md documents no code that does not exist', async (t) => {
  const known = new Set([...Object.keys(HTTP_ERRORS), ...Object.keys(CONFIG_ERRORS), ...Object.keys(DELIVERY_ERRORS), ...Object.keys(DELETION_ERRORS)])
  const documented = [...doc.matchAll(/^\| `([A-Za-z_]+)` \|/gm)].map((m) => m[1]!)
  t.ok(documented.length > 20)
  for (const code of documented) t.ok(known.has(code), `${code} exists in src/errors.ts`)
})
