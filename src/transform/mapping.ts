/**
 * The transform stage: each destination's mapping (DSL, docs/dsl.md), compiled when
 * the router is created and applied as the last step before the event is queued —
 * after consent, policies and the personal-data sweep — so `send` receives the
 * destination's own payloads.
 *
 * Where a destination's mapping comes from, first match wins:
 *   `mapping: <source>` in its config · `mappingFile: <path>` · the plugin's `mapping`.
 * `mapping: false` turns the plugin's default off.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve as resolvePath } from 'node:path'
import { compileMapping, DslCompileError, DslRuntimeError, type CompiledMapping } from '../../dsl/index.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { TraceEntry } from '../policy/engine.js'

export interface DestinationMapping {
  readonly compiled: CompiledMapping
  /** Where it came from, for messages: a config pointer, a file, or the plugin. */
  readonly origin: string
}

export type MappingVerdict =
  | { ok: true; event: Record<string, unknown>; bytes: number }
  | { ok: false; error?: string }

/**
 * Compiles one destination's mapping, or returns undefined when it has none.
 * Throws a ConfigError naming `/destinations/N/mapping` (or `/mappingFile`) and
 * every error's line:column.
 */
export function compileDestinationMapping(
  d: { name: string; mapping?: string | false; mappingFile?: string },
  plugin: { name: string; mapping?: string },
  where: string,
): DestinationMapping | undefined {
  if (d.mapping !== undefined && d.mappingFile !== undefined) {
    throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/mappingFile`, message: 'give mapping or mappingFile, not both' }])
  }
  let source: string
  let path: string
  let file: string
  if (d.mapping === false) return undefined
  if (typeof d.mapping === 'string') {
    source = d.mapping
    path = `${where}/mapping`
    file = `destination "${d.name}"`
  } else if (d.mappingFile !== undefined) {
    const abs = isAbsolute(d.mappingFile) ? d.mappingFile : resolvePath(process.cwd(), d.mappingFile)
    try {
      source = readFileSync(abs, 'utf8')
    } catch (err) {
      throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/mappingFile`, message: `cannot read ${abs}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
    }
    path = `${where}/mappingFile`
    file = abs
  } else if (typeof plugin.mapping === 'string') {
    source = plugin.mapping
    path = `${where}/mapping`
    file = `plugin "${plugin.name}" default mapping`
  } else {
    return undefined
  }
  try {
    return { compiled: compileMapping(source, { file }), origin: file }
  } catch (err) {
    if (!(err instanceof DslCompileError)) throw err
    throw new ConfigError(
      'CONFIG_INVALID',
      err.errors.map((e) => ({ path, message: `${e.line}:${e.column} ${e.code} ${e.message} (${file})\n${e.excerpt.replace(/^/gm, '      ')}` })),
      `Invalid mapping for destination "${d.name}":`,
    )
  }
}

/**
 * Applies a mapping to one event. Never throws: an event the mapping cannot handle
 * (over a run-time limit) is not sent, and the reason is logged and traced.
 */
export function applyMapping(
  m: DestinationMapping,
  event: Record<string, unknown>,
  destination: string,
  logger: Logger,
  trace?: { actions: TraceEntry[]; droppedBy?: string },
): MappingVerdict {
  try {
    const { output, bytes } = m.compiled.apply(event)
    if (output === null) {
      if (trace) {
        trace.actions.push({ rule: 'mapping', action: 'drop', paths: [] })
        trace.droppedBy = 'mapping'
      }
      return { ok: false }
    }
    trace?.actions.push({ rule: 'mapping', action: 'map', paths: [] })
    return { ok: true, event: output, bytes }
  } catch (err) {
    const code = err instanceof DslRuntimeError ? err.code : 'internal'
    logger.warn({ destination, code, messageId: event.messageId, err: (err as Error).message }, 'the mapping failed on an event; it is not sent')
    if (trace) {
      trace.actions.push({ rule: 'mapping', action: `error ${code}`, paths: [] })
      trace.droppedBy = 'mapping'
    }
    return { ok: false, error: (err as Error).message }
  }
}
