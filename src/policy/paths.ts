/**
 * Field paths for policies: `traits.email`, `properties.products[*].sku`,
 * `properties.products[0]`, `context.*.email` (one level, any key), `**.email` (any
 * depth). Paths are untrusted config: `__proto__`, `constructor` and `prototype` are
 * refused when the path is compiled, and traversal only ever visits own properties.
 */

export type Segment =
  | { kind: 'key'; key: string }
  | { kind: 'index'; index: number }
  /** `*` on an object (every own key) or `[*]` / `*` on an array (every item). */
  | { kind: 'any' }
  /** `**`: this node and every node below it. */
  | { kind: 'deep' }

export interface CompiledPath {
  source: string
  segments: Segment[]
  /** True when the path can match more than one place. */
  wild: boolean
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

export class PathError extends Error {
  readonly code = 'POLICY_PATH_INVALID'
  readonly pathSource: string
  constructor(source: string, message: string) {
    super(`path "${source}": ${message}`)
    this.name = 'PathError'
    this.pathSource = source
  }
}

const cache = new Map<string, CompiledPath>()

/** Parse a path; throws PathError on bad syntax or forbidden keys. Cached. */
export function compilePath(source: string): CompiledPath {
  const hit = cache.get(source)
  if (hit) return hit
  if (typeof source !== 'string' || source === '') throw new PathError(String(source), 'must be a non-empty string')
  if (source.length > 512) throw new PathError(source.slice(0, 40) + '…', 'is longer than 512 characters')
  const segments: Segment[] = []
  let i = 0
  while (i < source.length) {
    if (source[i] === '.') {
      if (i === 0 || i === source.length - 1 || source[i + 1] === '.') throw new PathError(source, `empty segment at character ${i + 1}`)
      i++
      continue
    }
    if (source[i] === '[') {
      const end = source.indexOf(']', i)
      if (end === -1) throw new PathError(source, `unclosed "[" at character ${i + 1}`)
      const inner = source.slice(i + 1, end).trim()
      if (inner === '*') segments.push({ kind: 'any' })
      else if (/^\d{1,9}$/.test(inner)) segments.push({ kind: 'index', index: Number(inner) })
      else if (/^(["']).*\1$/.test(inner)) {
        const key = inner.slice(1, -1)
        if (FORBIDDEN.has(key)) throw new PathError(source, `the key "${key}" is not allowed`)
        segments.push({ kind: 'key', key })
      } else throw new PathError(source, `"[${inner}]" must be [*], [number] or ["key"]`)
      i = end + 1
      // `a[0]b` is a typo for `a[0].b`, not a path: say so rather than guess.
      if (i < source.length && source[i] !== '.' && source[i] !== '[') throw new PathError(source, `expected "." or "[" after "]" at character ${i + 1}`)
      continue
    }
    let j = i
    while (j < source.length && source[j] !== '.' && source[j] !== '[') j++
    const name = source.slice(i, j)
    if (name === '**') segments.push({ kind: 'deep' })
    else if (name === '*') segments.push({ kind: 'any' })
    else {
      if (FORBIDDEN.has(name)) throw new PathError(source, `the key "${name}" is not allowed`)
      segments.push({ kind: 'key', key: name })
    }
    i = j
  }
  const compiled = { source, segments, wild: segments.some((s) => s.kind === 'any' || s.kind === 'deep') }
  if (cache.size > 10_000) cache.clear()
  cache.set(source, compiled)
  return compiled
}

type Container = Record<string, unknown> | unknown[]

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === 'object'
}

function ownKeys(c: Container): string[] {
  return Array.isArray(c) ? c.map((_, i) => String(i)) : Object.keys(c).filter((k) => !FORBIDDEN.has(k))
}

/** The readable path of a child: `a.b`, `a[0]`. */
export function childPath(at: string, parent: unknown, key: string): string {
  if (Array.isArray(parent)) return `${at}[${key}]`
  return at ? `${at}.${key}` : key
}

/**
 * Visit every place the path matches: `visit(parent, key, concretePath)` where
 * `parent[key]` exists as an own property. Depth of `**` sweeps is bounded.
 */
export function visitPath(
  root: unknown,
  path: CompiledPath,
  visit: (parent: Container, key: string, at: string) => void,
  maxDepth = 32,
): void {
  // Two `**` in one path (`**.**.x`) reach some places along several routes; each
  // place is visited once, or a delete would splice the wrong array item.
  const seen = path.segments.filter((s) => s.kind === 'deep').length > 1 ? new Map<Container, Set<string>>() : undefined
  const once = (parent: Container, key: string): boolean => {
    if (!seen) return true
    let keys = seen.get(parent)
    if (!keys) seen.set(parent, (keys = new Set()))
    if (keys.has(key)) return false
    keys.add(key)
    return true
  }
  const walk = (node: unknown, si: number, at: string, depth: number) => {
    if (!isContainer(node) || depth > maxDepth) return
    const seg = path.segments[si]!
    const last = si === path.segments.length - 1
    const step = (key: string) => {
      if (!Object.hasOwn(node, key)) return
      const child = (node as Record<string, unknown>)[key]
      const here = childPath(at, node, key)
      if (!last) walk(child, si + 1, here, depth + 1)
      else if (once(node, key)) visit(node, key, here)
    }
    switch (seg.kind) {
      case 'key':
        if (Array.isArray(node)) return
        return step(seg.key)
      case 'index':
        if (!Array.isArray(node)) return
        return step(String(seg.index))
      case 'any':
        for (const k of ownKeys(node)) step(k)
        return
      case 'deep':
        // `**.x` matches x here and at any depth below.
        if (last) {
          for (const k of ownKeys(node)) step(k)
          for (const k of ownKeys(node)) walk((node as Record<string, unknown>)[k], si, childPath(at, node, k), depth + 1)
          return
        }
        walk(node, si + 1, at, depth)
        for (const k of ownKeys(node)) walk((node as Record<string, unknown>)[k], si, childPath(at, node, k), depth + 1)
    }
  }
  if (path.segments.length > 0) walk(root, 0, '', 0)
}

/** Every value the path matches. */
export function getAll(root: unknown, path: CompiledPath): unknown[] {
  const out: unknown[] = []
  visitPath(root, path, (p, k) => out.push((p as Record<string, unknown>)[k]))
  return out
}

/** The value at a path without wildcards (undefined when absent). */
export function getPath(root: unknown, path: CompiledPath): unknown {
  let node = root
  for (const seg of path.segments) {
    if (!isContainer(node)) return undefined
    const key = seg.kind === 'key' ? seg.key : seg.kind === 'index' ? String(seg.index) : undefined
    if (key === undefined || !Object.hasOwn(node, key)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

/** Set a value at a path without wildcards, creating objects on the way. Returns false if a non-object blocks it. */
export function setPath(root: Record<string, unknown>, path: CompiledPath, value: unknown): boolean {
  if (path.wild) throw new PathError(path.source, 'cannot set through a wildcard; name one place')
  let node: Container = root
  const segs = path.segments
  for (let i = 0; i < segs.length - 1; i++) {
    const seg = segs[i]!
    const key = seg.kind === 'key' ? seg.key : String((seg as { index: number }).index)
    let next: unknown = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined
    if (next === undefined || next === null) {
      next = segs[i + 1]!.kind === 'index' ? [] : {}
      Object.defineProperty(node, key, { value: next, writable: true, enumerable: true, configurable: true })
    }
    if (!isContainer(next)) return false
    node = next
  }
  const lastSeg = segs[segs.length - 1]!
  const key = lastSeg.kind === 'key' ? lastSeg.key : String((lastSeg as { index: number }).index)
  Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true })
  return true
}

/** Delete every match; returns the concrete paths removed. Array items are removed, not left as holes. */
export function deleteAll(root: unknown, path: CompiledPath): string[] {
  const removed: Array<{ parent: Container; key: string; at: string }> = []
  visitPath(root, path, (parent, key, at) => removed.push({ parent, key, at }))
  // Delete array items from the highest index down so earlier indexes stay valid.
  for (const r of removed.reverse()) {
    if (Array.isArray(r.parent)) r.parent.splice(Number(r.key), 1)
    else delete (r.parent as Record<string, unknown>)[r.key]
  }
  return removed.map((r) => r.at).reverse()
}

/** Replace every match with `fn(value)`; returns the concrete paths changed. */
export function updateAll(root: unknown, path: CompiledPath, fn: (v: unknown) => unknown): string[] {
  const changed: string[] = []
  visitPath(root, path, (parent, key, at) => {
    const p = parent as Record<string, unknown>
    const before = p[key]
    const after = fn(before)
    if (after !== before) {
      p[key] = after
      changed.push(at)
    }
  })
  return changed
}
