/**
 * messageId dedup within a time window. Clients retry with the same messageId, so
 * this turns at-least-once intake into exactly-once fan-out.
 *
 * A Map answers "seen?"; a ring buffer of (id, expiry) beside it says what to forget
 * next, in arrival order — which is also expiry order, the window being fixed.
 * Evicting by iterating the Map from the front would look cheap but is not: V8 keeps
 * deleted slots until it rehashes, and each new iterator walks them all (measured:
 * 1 µs → 60 µs per call once full). The ring holds at most maxEntries records, so the
 * Map never holds more either; an id seen again after it expired leaves a stale record
 * behind, which is skipped (and counts toward the cap until it is dropped).
 */
export class Dedup {
  readonly #seen = new Map<string, number>()
  #ids: Array<string | undefined> = new Array<string | undefined>(1024)
  #exp = new Float64Array(1024)
  #head = 0
  #count = 0
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
    while (this.#count > 0 && this.#exp[this.#head]! <= now) this.#pop()
    if (this.#count >= this.maxEntries) this.#pop()
    if (this.#count === this.#ids.length) this.#grow()
    const e = now + this.windowMs
    this.#seen.set(id, e)
    const tail = (this.#head + this.#count) % this.#ids.length
    this.#ids[tail] = id
    this.#exp[tail] = e
    this.#count++
    return false
  }

  /** Forget an id (a request the spool refused: the client's retry is not a duplicate). Its ring record goes stale. */
  forget(id: string): void {
    this.#seen.delete(id)
  }

  #pop(): void {
    const k = this.#ids[this.#head]!
    // A newer sighting of the same id has a later expiry: this record is stale.
    if (this.#seen.get(k) === this.#exp[this.#head]) this.#seen.delete(k)
    this.#ids[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#ids.length
    this.#count--
  }

  #grow(): void {
    const size = Math.min(this.#ids.length * 2, Math.max(this.maxEntries, 1))
    const ids = new Array<string | undefined>(size)
    const exp = new Float64Array(size)
    for (let i = 0; i < this.#count; i++) {
      const j = (this.#head + i) % this.#ids.length
      ids[i] = this.#ids[j]
      exp[i] = this.#exp[j]!
    }
    this.#ids = ids
    this.#exp = exp
    this.#head = 0
  }

  get size(): number {
    return this.#seen.size
  }
}
