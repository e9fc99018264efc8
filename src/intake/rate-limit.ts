/** A token bucket per source: write keys are public, so intake can be capped per key. */
export class TokenBucket {
  #tokens: number
  #last: number
  readonly rate: number
  readonly burst: number

  /** `rate` tokens per second, at most `burst` saved up. */
  constructor(rate: number, burst: number, now = Date.now()) {
    this.rate = rate
    this.burst = burst
    this.#tokens = burst
    this.#last = now
  }

  /**
   * Take `n` tokens; returns 0 when granted, else the milliseconds until they would be.
   * A batch larger than `burst` could never be granted and its client would retry it
   * forever, so a full bucket grants it and goes into debt, repaid at `rate`.
   */
  take(n: number, now = Date.now()): number {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate)
    this.#last = now
    if (n <= this.#tokens || (n > this.burst && this.#tokens >= this.burst)) {
      this.#tokens -= n
      return 0
    }
    return Math.ceil(((Math.min(n, this.burst) - this.#tokens) / this.rate) * 1000)
  }
}
