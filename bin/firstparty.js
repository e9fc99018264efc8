#!/usr/bin/env node
// Launcher for the `firstparty` command: the built CLI when there is one (an
// installed package), else the TypeScript source through @swc-node (a checkout).
import { existsSync } from 'node:fs'

const built = new URL('../dist/src/cli.js', import.meta.url)
let cli
if (existsSync(built)) {
  cli = await import(built.href)
} else {
  await import('@swc-node/register/esm-register')
  cli = await import(new URL('../src/cli.ts', import.meta.url).href)
}
process.exitCode = await cli.main(process.argv.slice(2))
