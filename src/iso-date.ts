/**
 * `Date.parse` with a fast path for the ISO 8601 forms clients actually send:
 * `YYYY-MM-DDTHH:mm:ss`, then `.s`, `.ss` or `.sss`, then `Z` or `±HH:mm`
 * (`new Date().toISOString()` in browsers and Node, Segment's libraries, most SDKs).
 *
 * V8's `Date.parse` runs its general date tokenizer on every call: about 2,000
 * machine instructions for one of these strings (callgrind), as much as SHA-256 of a
 * short string. The fast path reads the fixed positions and does the calendar
 * arithmetic itself. Anything it does not recognise exactly (other separators,
 * lowercase `t`/`z`, hour 24, more than three fraction digits, `+HHmm`, expanded
 * years) goes to `Date.parse`, so the result is always `Date.parse(text)`;
 * test/iso-date.test.ts compares the two on generated and mutated strings.
 */

/** Days before each month in a common year. */
const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
/** Leap days in the proleptic Gregorian calendar up to and including year `y`. */
const leapDays = (y: number) => Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400)
const LEAP_DAYS_TO_1969 = leapDays(1969)

/** The two decimal digits at `i` as a number, or -1 (also past the end: NaN fails both tests). */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48
  const b = s.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

/** Epoch milliseconds of `text` exactly as `Date.parse(text)` returns them (NaN when it is no date). */
export function parseIsoDate(text: string): number {
  const n = text.length
  if (
    n < 20 || n > 29 ||
    text.charCodeAt(4) !== 45 /* - */ || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== 58 /* : */ || text.charCodeAt(16) !== 58
  ) return Date.parse(text)
  const century = twoDigits(text, 0)
  const yy = twoDigits(text, 2)
  const month = twoDigits(text, 5)
  const day = twoDigits(text, 8)
  const hour = twoDigits(text, 11)
  const minute = twoDigits(text, 14)
  const second = twoDigits(text, 17)
  if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return Date.parse(text)
  }
  let i = 19
  let ms = 0
  if (text.charCodeAt(i) === 46 /* . */) {
    let digits = 0
    for (i = 20; digits < 3; i++, digits++) {
      const c = text.charCodeAt(i) - 48
      if (!(c >= 0 && c <= 9)) break
      ms = ms * 10 + c
    }
    if (digits === 0) return Date.parse(text)
    if (digits === 1) ms *= 100
    else if (digits === 2) ms *= 10
  }
  let offset = 0
  const zone = text.charCodeAt(i)
  if (zone === 90 /* Z */ && i + 1 === n) {
    // UTC
  } else if ((zone === 43 /* + */ || zone === 45 /* - */) && i + 6 === n && text.charCodeAt(i + 3) === 58) {
    const oh = twoDigits(text, i + 1)
    const om = twoDigits(text, i + 4)
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return Date.parse(text)
    offset = (oh * 60 + om) * 60_000
    if (zone === 43) offset = -offset
  } else {
    return Date.parse(text)
  }
  const year = century * 100 + yy
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  // A day past the month's end rolls into the next month, as Date.parse does (April 31 is May 1).
  const days =
    365 * (year - 1970) + leapDays(year - 1) - LEAP_DAYS_TO_1969 +
    DAYS_BEFORE_MONTH[month - 1]! + (leap && month > 2 ? 1 : 0) + day - 1
  return days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms + offset
}
