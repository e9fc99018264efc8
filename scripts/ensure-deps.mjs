// Runs before `npm start` and `npm test`: on a fresh clone, install the locked
// dependencies first, so the README's two commands work as they are.
import { existsSync } from 'node:fs'
import { execSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  console.error('firstparty: installing dependencies (npm ci)...')
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' })
}
