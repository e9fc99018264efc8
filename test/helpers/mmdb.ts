/**
 * A small MaxMind DB writer, for tests: no real GeoLite2 database can be downloaded
 * here, so the geo tests build one. It follows the MaxMind DB File Format
 * Specification v2.0 (https://maxmind.github.io/MaxMind-DB/):
 *
 * - a binary search tree over the bits of an IPv6 address (IPv4 networks live under
 *   `::/96`, where readers look them up), each node two records of `recordSize` bits
 *   (24 here: 6 bytes a node, big-endian). A record below `node_count` points at a node,
 *   equal to it means "no data", above it points into the data section at
 *   `record - node_count - 16`;
 * - 16 zero bytes (the data section separator), then the data section: each value a
 *   control byte (type in the top 3 bits, size in the low 5; types above 7 are
 *   "extended": type 0 and a second byte holding type − 7; sizes 29/30/31 take 1/2/3
 *   more bytes, adding 29/285/65 821), then the payload;
 * - the metadata marker `\xAB\xCD\xEFMaxMind.com` and the metadata map (node_count,
 *   record_size, ip_version, database_type, languages, binary format 2.0, build_epoch,
 *   description).
 *
 * Nested networks are not supported (a network inside another one): the tests do not
 * need them.
 */
import { isIP } from 'node:net'

/** Unsigned integers of a given width; a plain JS number is written as a double. */
export class Uint {
  constructor(readonly bits: 16 | 32 | 64, readonly value: number | bigint) {}
}
export const u16 = (n: number) => new Uint(16, n)
export const u32 = (n: number) => new Uint(32, n)
export const u64 = (n: number | bigint) => new Uint(64, n)

export type MmdbValue = string | number | boolean | Uint | MmdbValue[] | { [key: string]: MmdbValue }

const TYPE = { utf8: 2, double: 3, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11, boolean: 14 } as const

function control(type: number, size: number): Buffer {
  const extended = type > 7
  let first = (extended ? 0 : type) << 5
  const more: number[] = []
  if (size < 29) first |= size
  else if (size < 285) {
    first |= 29
    more.push(size - 29)
  } else if (size < 65_821) {
    first |= 30
    const v = size - 285
    more.push(v >> 8, v & 0xff)
  } else {
    first |= 31
    const v = size - 65_821
    more.push((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
  }
  return Buffer.from([first, ...(extended ? [type - 7] : []), ...more])
}

function uintBytes(value: number | bigint, maxBytes: number): Buffer {
  let v = BigInt(value)
  if (v < 0n) throw new Error('unsigned integers only')
  const bytes: number[] = []
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn))
    v >>= 8n
  }
  if (bytes.length > maxBytes) throw new Error(`${value} does not fit in ${maxBytes * 8} bits`)
  return Buffer.from(bytes)
}

/** One value in the data-section encoding. */
export function encodeValue(value: MmdbValue): Buffer {
  if (typeof value === 'string') {
    const b = Buffer.from(value, 'utf8')
    return Buffer.concat([control(TYPE.utf8, b.length), b])
  }
  if (typeof value === 'number') {
    const b = Buffer.alloc(8)
    b.writeDoubleBE(value)
    return Buffer.concat([control(TYPE.double, 8), b])
  }
  if (typeof value === 'boolean') return control(TYPE.boolean, value ? 1 : 0)
  if (value instanceof Uint) {
    const b = uintBytes(value.value, value.bits / 8)
    const type = value.bits === 16 ? TYPE.uint16 : value.bits === 32 ? TYPE.uint32 : TYPE.uint64
    return Buffer.concat([control(type, b.length), b])
  }
  if (Array.isArray(value)) return Buffer.concat([control(TYPE.array, value.length), ...value.map(encodeValue)])
  const entries = Object.entries(value)
  return Buffer.concat([control(TYPE.map, entries.length), ...entries.flatMap(([k, v]) => [encodeValue(k), encodeValue(v)])])
}

/** The 128 bits of an address (IPv4 as `::a.b.c.d`), most significant first. */
function addressBits(address: string): number[] {
  const family = isIP(address)
  let bytes: number[]
  if (family === 4) bytes = [...Array(12).fill(0), ...address.split('.').map(Number)]
  else if (family === 6) {
    const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
    const h = head ? head.split(':') : []
    const t = tail ? tail.split(':') : []
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
    bytes = groups.flatMap((g) => {
      const n = parseInt(g, 16)
      return [n >> 8, n & 0xff]
    })
  } else throw new Error(`not an IP address: ${address}`)
  return bytes.flatMap((b) => [7, 6, 5, 4, 3, 2, 1, 0].map((i) => (b >> i) & 1))
}

type Rec = { kind: 'empty' } | { kind: 'node'; node: TreeNode } | { kind: 'data'; offset: number }
interface TreeNode {
  records: [Rec, Rec]
}

export interface MmdbOptions {
  /** @default 'GeoLite2-City' */
  databaseType?: string
  /** @default ['en'] */
  languages?: string[]
  /** `network` is CIDR: `203.0.113.0/24`, `2001:db8::/32`. */
  networks: Array<{ network: string; data: MmdbValue }>
}

/** A whole .mmdb file (IPv6 tree, 24-bit records). */
export function writeMmdb(options: MmdbOptions): Buffer {
  const empty = (): Rec => ({ kind: 'empty' })
  const root: TreeNode = { records: [empty(), empty()] }
  const data: Buffer[] = []
  let dataSize = 0
  for (const { network, data: value } of options.networks) {
    const [address, len] = network.split('/') as [string, string]
    const prefix = Number(len) + (isIP(address) === 4 ? 96 : 0)
    const bits = addressBits(address)
    const encoded = encodeValue(value)
    const leaf: Rec = { kind: 'data', offset: dataSize }
    data.push(encoded)
    dataSize += encoded.length
    let node = root
    for (let i = 0; i < prefix; i++) {
      const bit = bits[i]!
      const rec = node.records[bit]!
      if (i === prefix - 1) {
        if (rec.kind !== 'empty') throw new Error(`${network} overlaps another network`)
        node.records[bit] = leaf
      } else if (rec.kind === 'node') node = rec.node
      else if (rec.kind === 'empty') {
        const child: TreeNode = { records: [empty(), empty()] }
        node.records[bit] = { kind: 'node', node: child }
        node = child
      } else throw new Error(`${network} is inside another network`)
    }
  }
  // Number the nodes breadth-first; the root is node 0.
  const nodes: TreeNode[] = [root]
  for (let i = 0; i < nodes.length; i++) for (const r of nodes[i]!.records) if (r.kind === 'node') nodes.push(r.node)
  const index = new Map(nodes.map((n, i) => [n, i]))
  const nodeCount = nodes.length
  const value = (r: Rec): number => (r.kind === 'node' ? index.get(r.node)! : r.kind === 'empty' ? nodeCount : nodeCount + 16 + r.offset)
  const tree = Buffer.alloc(nodeCount * 6)
  nodes.forEach((n, i) => {
    const [l, r] = n.records.map(value) as [number, number]
    if (l >= 2 ** 24 || r >= 2 ** 24) throw new Error('the tree is too large for 24-bit records')
    tree.writeUIntBE(l, i * 6, 3)
    tree.writeUIntBE(r, i * 6 + 3, 3)
  })
  const metadata = encodeValue({
    node_count: u32(nodeCount),
    record_size: u16(24),
    ip_version: u16(6),
    database_type: options.databaseType ?? 'GeoLite2-City',
    languages: options.languages ?? ['en'],
    binary_format_major_version: u16(2),
    binary_format_minor_version: u16(0),
    build_epoch: u64(Math.floor(Date.now() / 1000)),
    description: { en: 'firstparty test database' },
  })
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), metadata])
}

/** A GeoLite2-City record, as MaxMind lays it out. */
export function cityRecord(r: { city: string; country: string; countryCode: string; region: string; regionCode: string; latitude: number; longitude: number; timeZone: string; geonameId?: number }): MmdbValue {
  return {
    city: { geoname_id: u32(r.geonameId ?? 1), names: { en: r.city } },
    continent: { code: 'EU', geoname_id: u32(6_255_148), names: { en: 'Europe' } },
    country: { geoname_id: u32(2_921_044), iso_code: r.countryCode, names: { en: r.country } },
    location: { accuracy_radius: u16(20), latitude: r.latitude, longitude: r.longitude, time_zone: r.timeZone },
    registered_country: { geoname_id: u32(2_921_044), iso_code: r.countryCode, names: { en: r.country } },
    subdivisions: [{ geoname_id: u32(2_950_157), iso_code: r.regionCode, names: { en: r.region } }],
  }
}
