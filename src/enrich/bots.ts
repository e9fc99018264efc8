/**
 * Bot detection with isbot (Unlicense): one pattern built from its list of crawler,
 * monitor and HTTP-library user agents. Shared by the enricher and the `is_bot` policy
 * operation so both give the same answer.
 */
import { isbot } from 'isbot'

/** Longest user agent looked at; ua-parser-js stops at 500 characters too. */
export const MAX_USER_AGENT = 512

/** Whether a user-agent string is a bot's. Anything but a non-empty string is not. */
export function isBotUserAgent(userAgent: unknown): boolean {
  if (typeof userAgent !== 'string' || userAgent === '') return false
  return isbot(userAgent.length > MAX_USER_AGENT ? userAgent.slice(0, MAX_USER_AGENT) : userAgent)
}

/**
 * The `is_bot` operation: given a string, test it as a user agent; given an event (pass
 * `{"var": ""}`), test its `context.userAgent`.
 */
export function isBotValue(value: unknown): boolean {
  if (typeof value === 'string') return isBotUserAgent(value)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const context = (value as { context?: unknown }).context
  if (context === null || typeof context !== 'object') return false
  return isBotUserAgent((context as { userAgent?: unknown }).userAgent)
}
