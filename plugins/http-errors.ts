/**
 * Turn a got error into the typed error the delivery engine understands, keeping the
 * status and Retry-After but never the response body (it may echo personal data).
 */
import { AuthenticationError, DeliveryError, PermanentError, RetryableError } from '../src/errors.js'
import { classifyError } from '../src/deliver/retry.js'

export function toDeliveryError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err
  const c = classifyError(err)
  const status = c.status !== undefined ? { status: c.status } : {}
  if (c.rule === 'auth') return new AuthenticationError(c.message, status)
  if (c.rule === 'permanent') return new PermanentError(c.message, status)
  return new RetryableError(c.message, { ...status, ...(c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : {}) })
}
