/**
 * `firstparty` command line:
 *   firstparty map <mapping.fp> <event.json>   print the mapped payload (or the errors)
 *   firstparty check [config]                  compile every mapping and policy of a config
 *   firstparty explain [config] [--deny R]     which personal data can reach which destination
 * Exit code 0 on success, 1 on errors, 2 on usage errors.
 */
import { readFile } from 'node:fs/promises'
import { checkMapping, compileMapping, DslCompileError, DslRuntimeError, formatDiagnostic, type Diagnostic } from '../dsl/index.js'
import { loadConfig } from './config.js'
import { ConfigError } from './errors.js'
import type { DestinationDefinition } from './plugin.js'
import { createPolicyRuntime } from './policy/runtime.js'
import { compileDestinationMapping } from './transform/mapping.js'
import { builtinDestinations } from '../plugins/builtin.js'
import { dlq, DLQ_USAGE } from './cli/dlq.js'
import { explain } from './cli/explain.js'
import { privacyCommand, PRIVACY_USAGE } from './cli/privacy.js'

export interface CliIO {
  out(text: string): void
  err(text: string): void
}

const USAGE = `usage:
  firstparty map <mapping-file> <event.json>   print what the mapping makes of the event(s)
  firstparty check [config-file]               compile every mapping and policy (default firstparty.config.yaml)
  firstparty dlq list|replay|purge [filters]   dead letters of a durable spool (see: firstparty dlq --help)
  firstparty explain [config-file] [--deny RULE]... [--json]
                                               which personal data can reach which destination (see: firstparty explain --help)
${DLQ_USAGE.replace(/^usage:\n/, '')}
${PRIVACY_USAGE.replace(/^usage:\n/, '')}`

const processIO: CliIO = {
  out: (t) => void process.stdout.write(`${t}\n`),
  err: (t) => void process.stderr.write(`${t}\n`),
}

/** Runs one command; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [command, ...args] = argv
  try {
    switch (command) {
      case 'map':
        return await map(args, io)
      case 'check':
        return await check(args, io)
      case 'explain':
        return await explain(args, io)
      case 'dlq':
        // On a terminal the progress bar redraws in place; a caller's own io gets lines.
        return await dlq(args, io === processIO ? { ...io, progress: (t) => void process.stderr.write(t), tty: Boolean(process.stderr.isTTY) } : io)
      case 'suppress':
      case 'ledger':
      case 'deletions':
        return await privacyCommand(command, args, io)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE)
        return command === undefined ? 2 : 0
      default:
        io.err(`unknown command "${command}"\n${USAGE}`)
        return 2
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message)
      return 1
    }
    throw err
  }
}

async function map(args: readonly string[], io: CliIO): Promise<number> {
  if (args.length !== 2) {
    io.err(`map takes a mapping file and an event file\n${USAGE}`)
    return 2
  }
  const [mappingFile, eventFile] = args as [string, string]
  const source = await readText(mappingFile, io)
  const eventText = await readText(eventFile, io)
  if (source === null || eventText === null) return 1
  let input: unknown
  try {
    input = JSON.parse(eventText)
  } catch (err) {
    io.err(`${eventFile}: not JSON: ${(err as Error).message}`)
    return 1
  }
  const { warnings } = checkMapping(source)
  let compiled
  try {
    compiled = compileMapping(source, { file: mappingFile })
  } catch (err) {
    if (!(err instanceof DslCompileError)) throw err
    printDiagnostics(io, err.errors, mappingFile)
    printDiagnostics(io, err.warnings, mappingFile)
    return 1
  }
  printDiagnostics(io, warnings, mappingFile)
  const events = Array.isArray(input) ? input : [input]
  const outputs: unknown[] = []
  for (const [i, ev] of events.entries()) {
    try {
      const out = compiled(ev)
      if (out === null) io.err(`event ${Array.isArray(input) ? `#${i} ` : ''}dropped by the mapping`)
      outputs.push(out)
    } catch (err) {
      if (!(err instanceof DslRuntimeError)) throw err
      io.err(`event ${Array.isArray(input) ? `#${i} ` : ''}${err.message}`)
      return 1
    }
  }
  io.out(JSON.stringify(Array.isArray(input) ? outputs : outputs[0], null, 2))
  return 0
}

async function check(args: readonly string[], io: CliIO): Promise<number> {
  if (args.length > 1) {
    io.err(`check takes at most one config file\n${USAGE}`)
    return 2
  }
  const file = args[0] ?? 'firstparty.config.yaml'
  const config = await loadConfig(file)
  const problems: string[] = []
  let policies = 0
  let mappings = 0
  const collect = (fn: () => void) => {
    try {
      fn()
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      problems.push(err.message)
    }
  }
  let runtime: ReturnType<typeof createPolicyRuntime> | undefined
  collect(() => {
    runtime = createPolicyRuntime(config)
    policies += (config.policies ?? []).length
  })
  const plugins = new Map<string, DestinationDefinition>(builtinDestinations.map((p) => [p.name, p]))
  for (const p of config.plugins ?? []) if (typeof (p as DestinationDefinition).send === 'function') plugins.set(p.name, p as DestinationDefinition)
  ;(config.destinations ?? []).forEach((d, i) => {
    const where = `/destinations/${i}`
    const plugin = typeof d.type === 'object' ? d.type : plugins.get(d.type)
    if (!plugin) {
      problems.push(`${where}/type: no destination plugin "${String(d.type)}"`)
      return
    }
    if (runtime && d.policies) {
      collect(() => {
        runtime!.destination(d.name, d.consent ?? plugin.consent, d.policies, where)
        policies += d.policies!.length
      })
    }
    collect(() => {
      const m = compileDestinationMapping(d, plugin, where)
      if (m) {
        mappings++
        printDiagnostics(io, m.compiled.warnings, m.origin)
      }
    })
  })
  if (problems.length) {
    for (const p of problems) io.err(p)
    io.err(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`)
    return 1
  }
  io.out(`${file}: ok (${mappings} mapping${mappings === 1 ? '' : 's'}, ${policies} polic${policies === 1 ? 'y' : 'ies'})`)
  return 0
}

async function readText(file: string, io: CliIO): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    io.err(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return null
  }
}

function printDiagnostics(io: CliIO, list: readonly Diagnostic[], file: string): void {
  for (const d of list) io.err(formatDiagnostic(d, file))
}
