/**
 * The mapping DSL: a readable language for reshaping events per destination,
 * compiled through the same IR and code generator as JSON-Logic policies.
 * Reference: docs/dsl.md.
 */
export { compileMapping, compileCondition, checkMapping, DEFAULT_LIMITS } from './compile.js';
export type { CompiledMapping, CompileMappingOptions, MappingLimits, MappingResult } from './compile.js';
export { DslCompileError, DslRuntimeError, DSL_ERROR_CODES, formatDiagnostic } from './errors.js';
export type { Diagnostic, DslErrorCode, Span } from './errors.js';
export { parse, parseExpression } from './parser.js';
export { lex } from './lexer.js';
export { DSL_FUNCTIONS, createDslOperations } from './stdlib.js';
export type { DslFunction } from './stdlib.js';
export type { Mapping, Expr, Stmt, Rule, DefaultRule } from './ast.js';
