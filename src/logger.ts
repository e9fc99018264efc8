/**
 * The logger interface: pino's shape (`logger.warn(obj, msg)`), so a host app can pass
 * its own pino or winston-compatible logger. The router logs ids and counts, never
 * event bodies, settings or headers — those hold personal data and secrets.
 */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

/** A small JSON-lines logger to stderr; the default when the host passes none. */
export function createLogger(level: LogLevel = 'warn', bindings: object = {}): Logger {
  const min = ORDER[level]
  const write = (lvl: LogLevel) => (obj: object, msg?: string) => {
    if (ORDER[lvl] < min) return
    process.stderr.write(JSON.stringify({ level: lvl, time: new Date().toISOString(), ...bindings, ...obj, msg }) + '\n')
  }
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }
}

/** Bind fields onto every line, whatever the logger is (pino's `child` where it has one). */
export function childLogger(logger: Logger, bindings: object): Logger {
  const child = (logger as { child?: (b: object) => Logger }).child
  if (typeof child === 'function') return child.call(logger, bindings)
  return {
    debug: (o, m) => logger.debug({ ...bindings, ...o }, m),
    info: (o, m) => logger.info({ ...bindings, ...o }, m),
    warn: (o, m) => logger.warn({ ...bindings, ...o }, m),
    error: (o, m) => logger.error({ ...bindings, ...o }, m),
  }
}
