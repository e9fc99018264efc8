/**
 * Reading request bodies the way real clients send them: whatever the Content-Type
 * says (RudderStack's node SDK labels gzip JSON as form-urlencoded), gzip or deflate
 * with a cap on the inflated size, strict UTF-8, and JSON that cannot reach an
 * object's prototype.
 */
import type { IncomingMessage } from 'node:http'
import { isUtf8 } from 'node:buffer'
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib'
import { HttpError } from '../errors.js'

export interface BodyLimits {
  /** Largest request body, after decompression. @default 512_000 */
  maxRequestBytes: number
  /** Largest single event (its JSON size). @default 32_768 */
  maxEventBytes: number
  /** Most events in one batch. @default 2500 */
  maxBatchEvents: number
  /** Deepest JSON nesting accepted. @default 64 */
  maxDepth: number
}

const ACCEPTED_TYPES = new Set(['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/csp-report'])

/** Which media types we read as JSON. Others are refused with 415 before reading. */
export function checkContentType(header: string | undefined): void {
  if (!header) return
  const type = header.split(';', 1)[0]!.trim().toLowerCase()
  if (ACCEPTED_TYPES.has(type) || type.endsWith('+json')) return
  throw new HttpError('unsupported_media_type', `Content-Type "${type}" is not accepted; send application/json or text/plain`)
}

/** Read the raw body, inflating gzip/deflate, refusing anything over `max` bytes. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  let inflater: Gunzip | Inflate | undefined
  if (encoding === 'gzip' || encoding === 'x-gzip') inflater = createGunzip()
  else if (encoding === 'deflate') inflater = createInflate()
  else if (encoding !== 'identity' && encoding !== '') {
    return Promise.reject(new HttpError('invalid_encoding', `Content-Encoding "${encoding}" is not supported; use gzip, deflate or none`))
  }
  const declared = Number(req.headers['content-length'])
  if (!inflater && declared > max) {
    req.resume()
    return Promise.reject(new HttpError('request_too_large', `the body is ${declared} bytes; the limit is ${max}`))
  }

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let raw = 0
    let settled = false
    const stream = inflater ?? req
    const fail = (err: HttpError) => {
      if (settled) return
      settled = true
      if (inflater) {
        req.unpipe(inflater)
        inflater.destroy()
      }
      // Drain what is left so the client reads our answer instead of a reset.
      req.resume()
      reject(err)
    }
    if (inflater) {
      req.on('data', (c: Buffer) => {
        raw += c.length
        if (raw > max) fail(new HttpError('request_too_large', `the compressed body exceeds the limit of ${max} bytes`))
      })
      inflater.on('error', () => fail(new HttpError('invalid_encoding', `the body is not valid ${encoding} data`)))
      req.pipe(inflater)
    }
    stream.on('data', (c: Buffer) => {
      if (settled) return
      size += c.length
      if (size > max) {
        return fail(new HttpError('request_too_large', inflater
          ? `the body inflates past the limit of ${max} bytes`
          : `the body exceeds the limit of ${max} bytes`))
      }
      chunks.push(c)
    })
    stream.on('end', () => {
      if (settled) return
      settled = true
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    })
    req.on('error', () => fail(new HttpError('invalid_body', 'the request stream failed before the body was complete')))
    req.on('aborted', () => fail(new HttpError('invalid_body', 'the client aborted the request')))
  })
}

/** Parse a body buffer as strict UTF-8 JSON. */
export function parseJson(buf: Buffer): unknown {
  if (buf.length === 0) throw new HttpError('invalid_json', 'the body is empty; send a JSON object')
  if (!isUtf8(buf)) throw new HttpError('invalid_json', 'the body is not valid UTF-8')
  let text = buf.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  try {
    return JSON.parse(text)
  } catch (err) {
    if (err instanceof RangeError) throw new HttpError('too_deep', 'the JSON nests too deeply to parse')
    throw new HttpError('invalid_json', `the body is not valid JSON: ${(err as Error).message.slice(0, 200)}`)
  }
}

/**
 * Walk a parsed value once: refuse prototype-poisoning keys (`__proto__`, and
 * `constructor` holding `prototype`, as secure-json-parse does) and nesting deeper than
 * `maxDepth`, and return the value's JSON size (exact for plain ASCII strings, a close
 * estimate when strings hold characters JSON escapes or multi-byte characters).
 */
export function scanJson(value: unknown, maxDepth: number, where: string): number {
  return scan(value, 0, maxDepth, where)
}

/**
 * The same checks for a batch envelope's own fields, leaving out `skip` (the events,
 * which are scanned one by one), so `{"__proto__": …, "batch": […]}` is refused too.
 */
export function scanEnvelope(envelope: Record<string, unknown>, maxDepth: number, skip: string): void {
  for (const k in envelope) {
    if (k === skip) continue
    checkKey(k, envelope[k], '')
    scan(envelope[k], 1, maxDepth, k)
  }
}

function checkKey(k: string, child: unknown, where: string): void {
  if (k === '__proto__') throw new HttpError('invalid_body', `${where || 'body'}: the key "__proto__" is not allowed`)
  if (k === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype')) {
    throw new HttpError('invalid_body', `${where || 'body'}: the key "constructor.prototype" is not allowed`)
  }
}

function scan(v: unknown, depth: number, maxDepth: number, where: string): number {
  switch (typeof v) {
    case 'string':
      return v.length + 2
    case 'number':
      return String(v).length
    case 'boolean':
      return v ? 4 : 5
    case 'object': {
      if (v === null) return 4
      if (depth >= maxDepth) throw new HttpError('too_deep', `${where || 'body'}: nests deeper than ${maxDepth} levels`)
      if (Array.isArray(v)) {
        let n = 2 + Math.max(0, v.length - 1)
        for (let i = 0; i < v.length; i++) n += scan(v[i], depth + 1, maxDepth, where)
        return n
      }
      let n = 2
      for (const k in v) {
        const child = (v as Record<string, unknown>)[k]
        checkKey(k, child, where)
        n += k.length + 4 + scan(child, depth + 1, maxDepth, where)
      }
      return n
    }
    default:
      return 0
  }
}
