/** firstparty: a first-party, server-side customer-data router. */
export { createRouter, DEFAULT_DELIVERY, DEFAULT_LIMITS, VERSION } from './router.js'
export type { Router, RouterStats, ReplayResult, ServerEvent } from './router.js'
export { defineDestination, defineSource } from './plugin.js'
export type {
  BatchOptions,
  ConsentRequirement,
  DestinationContext,
  DestinationDefinition,
  SendResult,
  SourceContext,
  SourceDefinition,
  SourceRequest,
} from './plugin.js'
export {
  AuthenticationError,
  ConfigError,
  CONFIG_ERRORS,
  DELETION_ERRORS,
  DeliveryError,
  DELIVERY_ERRORS,
  HttpError,
  HTTP_ERRORS,
  PermanentError,
  RetryableError,
} from './errors.js'
export type { ConfigErrorCode, DeletionErrorCode, DeliveryErrorCode, HttpErrorCode, RetryRule } from './errors.js'
export { ConfigSchema, interpolateEnv, loadConfig, validateConfig } from './config.js'
export { createEnricher, EnrichSchema } from './enrich/index.js'
export type { EnrichOptions, Enricher, EnrichVerdict } from './enrich/index.js'
export type { FirstpartyIdentity, IdentityOptions } from './identity.js'
export type { DeliveryConfig, DestinationConfig, FirstpartyConfig, PrivacyConfig, RouterOptions, SourceConfig, SpoolConfig } from './config.js'
export type { DeleteUserOptions, DeletionResult, LedgerApi, SuppressionApi } from './privacy/index.js'
export type { DeletionReceipt, FieldTreatment, LedgerEntry, LedgerQuery, PrivacyStore, ReceiptQuery, ReceiptStatus, SubjectIds, Suppression, SuppressionKind } from './privacy/types.js'
export type { AsyncDeadLetterStore, SpoolStats } from './spool/types.js'
export { classifyStatus, DEFAULT_RETRY, parseRetryAfter } from './deliver/retry.js'
export type { RetryOptions } from './deliver/retry.js'
export { MemoryDeadLetterStore } from './deliver/dead-letters.js'
export type { DeadLetter, DeadLetterFilter, DeadLetterStore } from './deliver/dead-letters.js'
export type { DestinationStats } from './deliver/destination-queue.js'
export { EVENT_TYPES, EventSchemas } from './normalize/schema.js'
export type { EventType, FirstpartyEvent, IncomingEvent } from './normalize/schema.js'
export { checkMapping, compileCondition, compileMapping, DslCompileError, DslRuntimeError, DSL_ERROR_CODES, formatDiagnostic } from '../dsl/index.js'
export type { CompiledMapping, CompileMappingOptions, Diagnostic, DslErrorCode, MappingLimits } from '../dsl/index.js'
export { explainConfig, formatReport, parseDenyRule, checkDenyRules } from './explain/index.js'
export type { ExplainOptions } from './explain/index.js'
export { DATA_CLASSES } from './explain/types.js'
export type { ClassVerdict, ConsentSummary, DataClass, DenyRule, DenyViolation, DestinationReport, Flow as ExplainFlow, Report as ExplainReport, Treatment } from './explain/types.js'
export { createLogger } from './logger.js'
export type { Logger, LogLevel } from './logger.js'
export type { TrustProxy } from './intake/client-ip.js'
export { default as webhookDestination } from '../plugins/webhook/index.js'
export { default as fileDestination } from '../plugins/file/index.js'
export { default as consoleDestination } from '../plugins/console/index.js'
