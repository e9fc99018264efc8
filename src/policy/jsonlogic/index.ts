export { compileRule, createCompiler, DEFAULT_CACHE_SIZE, DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES } from './compile.js';
export type { CompileOptions, CompiledRule, Compiler, CompilerOptions } from './compile.js';
export { JsonLogicCompileError, JSONLOGIC_ERROR_CODES } from './errors.js';
export type { JsonLogicErrorCode } from './errors.js';
export {
  createOperations,
  registerOperation,
  Operations,
  REGEX_MAX_INPUT,
  REGEX_MAX_PATTERN,
  toEpochMillis,
} from './operations.js';
export type { CreateOperationsOptions, Operation, OperationFn, OperationOptions, ValueKind } from './operations.js';
export { lowerJsonLogic } from './lower.js';
export type { LowerLimits } from './lower.js';
export { generate } from './codegen.js';
export type { GeneratedRule } from './codegen.js';
export { FORBIDDEN_SEGMENTS } from './ir.js';
export type {
  AndNode,
  ArithNode,
  ArithOp,
  ArrayNode,
  CallNode,
  CompareNode,
  CompareOp,
  DataNode,
  DynamicVarNode,
  IfBranch,
  IfNode,
  IterateNode,
  IterateOp,
  LiteralNode,
  MissingNode,
  MissingSomeNode,
  Node,
  NotNode,
  OrNode,
  ReduceNode,
  VarNode,
} from './ir.js';
