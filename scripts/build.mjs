// Build: @swc/core compiles every TypeScript file of the package to dist/ (ESM, source
// maps); `tsc -p tsconfig.build.json` writes the .d.ts files beside them.
import { transformFile } from '@swc/core'
import { mkdir, readdir, rm, writeFile, copyFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist')
const roots = ['src', 'plugins', 'dsl']

async function* walk(dir) {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) yield* walk(p)
    else yield p
  }
}

await rm(out, { recursive: true, force: true })
let n = 0
for (const r of roots) {
  for await (const file of walk(join(root, r))) {
    const rel = relative(root, file)
    const dest = join(out, rel)
    await mkdir(dirname(dest), { recursive: true })
    if (file.endsWith('.ts') && !file.endsWith('.d.ts')) {
      const js = dest.replace(/\.ts$/, '.js')
      const { code, map } = await transformFile(file, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022', keepClassNames: true },
        module: { type: 'es6' },
        sourceMaps: true,
        sourceFileName: relative(dirname(js), file),
      })
      await writeFile(js, code + `\n//# sourceMappingURL=${relative(dirname(js), js)}.map\n`)
      await writeFile(js + '.map', map)
      n++
    } else if (!file.endsWith('.test.ts')) {
      // Mappings (.fp), examples (.json) and READMEs ship beside the code that reads them.
      await copyFile(file, dest)
    }
  }
}
console.log(`built ${n} files into dist/`)
