/**
 * `firstparty explain [config] [--deny RULE]... [--json]`: which personal data can reach
 * which destination, from the config alone. Exit 0: no deny rule is broken; 1: a deny
 * rule (from --deny or privacy.deny) matches a possible flow; 2: usage or config error.
 */
import { dirname, resolve as resolvePath } from 'node:path'
import { loadConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { explainConfig } from '../explain/index.js'
import { formatReport } from '../explain/format.js'

export const EXPLAIN_USAGE = `usage: firstparty explain [config-file] [--deny RULE]... [--json]
  For each destination and class of personal data (email, phone, ip, name, address,
  user_id, free_text): can it arrive raw, hashed, masked, or never — and under which consent.
  config-file     default: $FIRSTPARTY_CONFIG, else firstparty.config.yaml
  --deny RULE     forbid a flow: "<class>:<raw|hashed|masked|any> -> <destination>", lists
                  with commas, * for any ("email:raw -> *"); added to the config's privacy.deny
  --json          the report as JSON (docs/explain.md describes it)
  exit code: 0 no deny rule broken · 1 a forbidden flow is possible · 2 usage or config error`

export interface ExplainIO {
  out(text: string): void
  err(text: string): void
}

/** Runs `explain`; resolves to the exit code. */
export async function explain(args: readonly string[], io: ExplainIO): Promise<number> {
  const deny: string[] = []
  let json = false
  let file: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--json') json = true
    else if (a === '--deny') {
      const v = args[++i]
      if (v === undefined) {
        io.err(`--deny needs a rule, e.g. --deny "email:raw -> *"\n${EXPLAIN_USAGE}`)
        return 2
      }
      deny.push(v)
    } else if (a.startsWith('--deny=')) deny.push(a.slice('--deny='.length))
    else if (a === '--help' || a === '-h') {
      io.out(EXPLAIN_USAGE)
      return 0
    } else if (a.startsWith('-')) {
      io.err(`unknown option ${a}\n${EXPLAIN_USAGE}`)
      return 2
    } else if (file === undefined) file = a
    else {
      io.err(`explain takes one config file\n${EXPLAIN_USAGE}`)
      return 2
    }
  }
  const path = file ?? (process.env.FIRSTPARTY_CONFIG || 'firstparty.config.yaml')
  try {
    const config = await loadConfig(path)
    const report = explainConfig(config, { baseDir: dirname(resolvePath(path)), deny })
    io.out(json ? JSON.stringify(report, null, 2) : formatReport(report))
    if (report.deny.violations.length) {
      const rules = new Set(report.deny.violations.map((v) => v.rule))
      io.err(`${path}: ${report.deny.violations.length} forbidden flow${report.deny.violations.length === 1 ? '' : 's'} possible (${[...rules].map((r) => `"${r}"`).join(', ')})`)
      return 1
    }
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message)
      return 2
    }
    throw err
  }
}
