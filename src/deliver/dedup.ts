/**
 * messageId dedup within a time window. Clients retry with the same messageId, so
 * this turns at-least-once intake into exactly-once fan-out. Entries are kept in
 * insertion order, which is also expiry order, so both the window and the size cap
 * are enforced by dropping from the front.
 */
export class Dedup {
  readonly #seen = new Map<string, number>()
  readonly windowMs: number
  readonly maxEntries: number

  constructor(windowMs: number, maxEntries: number) {
    this.windowMs = windowMs
    this.maxEntries = maxEntries
  }

  /** True when `id` was seen within the window; otherwise remembers it and returns false. */
  seen(id: string, now = Date.now()): boolean {
    const expires = this.#seen.get(id)
    if (expires !== undefined && expires > now) return true
    if (expires !== undefined) this.#seen.delete(id)
    this.#seen.set(id, now + this.windowMs)
    for (const [k, exp] of this.#seen) {
      if (this.#seen.size <= this.maxEntries && exp > now) break
      this.#seen.delete(k)
    }
    return false
  }

  get size(): number {
    return this.#seen.size
  }
}
