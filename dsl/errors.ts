/**
 * Coded diagnostics of the mapping DSL. Like jsonata's, the code says which stage
 * found the problem: `DSL_S1xx` lexer, `DSL_S2xx` parser, `DSL_T1xx` checker
 * (names, arity, keys), `DSL_W1xx` checker warnings, `DSL_R1xx` run time (limits).
 * Every compile-time diagnostic carries a line, a column and a caret excerpt.
 */

export const DSL_ERROR_CODES = {
  DSL_S101: 'unexpected character',
  DSL_S102: 'unterminated string',
  DSL_S103: 'invalid escape sequence in a string',
  DSL_S104: 'invalid number',
  DSL_S105: 'unterminated block comment',
  DSL_S106: 'mapping source too long',
  DSL_S201: 'unexpected token',
  DSL_S202: 'expected an expression',
  DSL_S203: 'invalid assignment target',
  DSL_S204: 'more than one default rule',
  DSL_S205: 'nesting too deep',
  DSL_S206: 'unknown event type',
  DSL_S207: 'statement outside a rule',
  DSL_S208: 'a JSON-Logic rule must be constant JSON',
  DSL_S209: 'too many errors',
  DSL_T101: 'unknown function',
  DSL_T102: 'wrong number of arguments',
  DSL_T103: 'unknown variable',
  DSL_T104: 'forbidden key',
  DSL_T105: 'lambda misplaced',
  DSL_T106: 'invalid JSON-Logic rule',
  DSL_T107: 'duplicate binding',
  DSL_T108: 'invalid constant argument',
  DSL_T109: 'output index too large',
  DSL_T110: 'mapping too large',
  DSL_W101: 'unused binding',
  DSL_W102: 'output path assigned twice',
  DSL_W103: 'unreachable statement',
  DSL_W104: 'rule can never match',
  DSL_W105: 'not a field of a Segment event',
  DSL_W106: '`+` adds numbers',
  DSL_R101: 'output too large',
  DSL_R102: 'output has too many values',
  DSL_R103: 'too many array steps',
  DSL_R104: 'output nests too deeply',
} as const;

export type DslErrorCode = keyof typeof DSL_ERROR_CODES;

/** A position in the source: 1-based line and column, 0-based offsets `[start, end)`. */
export interface Span {
  readonly line: number;
  readonly column: number;
  readonly start: number;
  readonly end: number;
}

export interface Diagnostic {
  readonly code: DslErrorCode;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly line: number;
  readonly column: number;
  /** The source line with a caret under the problem. */
  readonly excerpt: string;
}

/** The caret excerpt of `span` in `source`: the line, then `^^^` under the span. */
export function excerpt(source: string, span: Span): string {
  const lineStart = span.start - (span.column - 1);
  let lineEnd = source.indexOf('\n', lineStart);
  if (lineEnd === -1) lineEnd = source.length;
  const raw = source.slice(Math.max(0, lineStart), lineEnd).replace(/\r$/, '');
  // Long lines are cut around the caret so messages stay readable.
  let from = 0;
  if (raw.length > 120 && span.column > 80) from = span.column - 60;
  const text = raw.slice(from, from + 120).replace(/\t/g, ' ');
  const width = Math.max(1, Math.min(span.end - span.start, lineEnd - span.start, 120 - (span.column - 1 - from)));
  const gutter = String(span.line);
  return `${gutter} | ${text}\n${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, span.column - 1 - from))}${'^'.repeat(width)}`;
}

export function diagnostic(code: DslErrorCode, message: string, span: Span, source: string): Diagnostic {
  return {
    code,
    severity: code.startsWith('DSL_W') ? 'warning' : 'error',
    message,
    line: span.line,
    column: span.column,
    excerpt: excerpt(source, span),
  };
}

/** One diagnostic as text: `file:3:18 error DSL_T101 unknown function "lowr"` and the excerpt. */
export function formatDiagnostic(d: Diagnostic, file = 'mapping'): string {
  return `${file}:${d.line}:${d.column} ${d.severity} ${d.code} ${d.message}\n${d.excerpt.replace(/^/gm, '  ')}`;
}

/** Thrown by `compileMapping` / `compileCondition`: every error found, and the warnings. */
export class DslCompileError extends Error {
  override readonly name = 'DslCompileError';
  /** The code of the first error. */
  readonly code: DslErrorCode;
  readonly line: number;
  readonly column: number;
  readonly errors: readonly Diagnostic[];
  readonly warnings: readonly Diagnostic[];

  constructor(errors: readonly Diagnostic[], warnings: readonly Diagnostic[] = [], file?: string) {
    const first = errors[0]!;
    super(`${errors.length} error${errors.length === 1 ? '' : 's'} in ${file ?? 'mapping'}:\n${errors.map((d) => formatDiagnostic(d, file)).join('\n')}`);
    this.code = first.code;
    this.line = first.line;
    this.column = first.column;
    this.errors = errors;
    this.warnings = warnings;
  }
}

/** Thrown when a mapping exceeds a run-time limit on one event. */
export class DslRuntimeError extends Error {
  override readonly name = 'DslRuntimeError';
  readonly code: DslErrorCode;
  constructor(code: DslErrorCode, detail: string) {
    super(`${code} ${DSL_ERROR_CODES[code]}: ${detail}`);
    this.code = code;
  }
}
