/**
 * Coded errors of the JSON-Logic compiler. Every compile error names the
 * rule location as a JSON pointer (RFC 6901) and, where there is one, the
 * operator, so the message tells the user what to change.
 */

/** Every code a {@link JsonLogicCompileError} can carry. */
export const JSONLOGIC_ERROR_CODES = {
  JSONLOGIC_UNKNOWN_OPERATOR: 'unknown operator',
  JSONLOGIC_FORBIDDEN_OPERATOR: 'operator is not supported for security reasons',
  JSONLOGIC_ARITY: 'wrong number of arguments',
  JSONLOGIC_INVALID_RULE: 'rule is not JSON data',
  JSONLOGIC_INVALID_ARGUMENT: 'invalid constant argument',
  JSONLOGIC_MAX_DEPTH: 'rule nests too deeply',
  JSONLOGIC_MAX_NODES: 'rule has too many nodes',
  JSONLOGIC_OPERATION_NAME: 'operation name cannot be registered',
} as const;

export type JsonLogicErrorCode = keyof typeof JSONLOGIC_ERROR_CODES;

/** Thrown by `compileRule` (and by `Operations#add`) before any code runs. */
export class JsonLogicCompileError extends Error {
  override readonly name = 'JsonLogicCompileError';
  readonly code: JsonLogicErrorCode;
  /** JSON pointer to the offending node, e.g. `/and/1/in`; `''` for the whole rule. */
  readonly pointer: string;
  /** The operator involved, when there is one. */
  readonly operator: string | undefined;

  constructor(code: JsonLogicErrorCode, pointer: string, detail: string, operator?: string) {
    const where = pointer === '' ? '(root)' : pointer;
    const op = operator === undefined ? '' : ` ${JSON.stringify(operator)}`;
    super(`${code}: ${JSONLOGIC_ERROR_CODES[code]}${op} at ${where}: ${detail}`);
    this.code = code;
    this.pointer = pointer;
    this.operator = operator;
  }
}

/** Escapes one reference token of a JSON pointer (RFC 6901 §3). */
export function pointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}
