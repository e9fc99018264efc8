/**
 * The client's address, as Express's `trust proxy` finds it: the socket address, or —
 * behind proxies the operator trusts — the right-most X-Forwarded-For entry that is
 * not itself a trusted proxy.
 */
import { BlockList, isIP } from 'node:net'
import type { IncomingMessage } from 'node:http'

/**
 * `false`: use the socket address (the default; X-Forwarded-For is client-controlled).
 * `true`: trust every proxy (left-most X-Forwarded-For).
 * a number: trust that many hops in front of the server.
 * a list of addresses or CIDRs (`'10.0.0.0/8'`, `'loopback'`): trust those proxies.
 */
export type TrustProxy = boolean | number | string[]

export type IpResolver = (req: IncomingMessage) => string | undefined

const NAMED: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

function stripMapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip
}

export function buildBlockList(entries: string[], where: string): BlockList {
  const list = new BlockList()
  entries.forEach((raw, i) => {
    for (const entry of NAMED[raw] ?? [raw]) {
      const [addr, bits] = entry.split('/')
      const family = isIP(addr ?? '')
      if (!family) throw new Error(`${where}/${i}: "${raw}" is not an IP address, CIDR range or one of ${Object.keys(NAMED).join(', ')}`)
      const type = family === 4 ? 'ipv4' : 'ipv6'
      if (bits === undefined) list.addAddress(addr!, type)
      else {
        const prefix = Number(bits)
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
          throw new Error(`${where}/${i}: "${raw}" has an invalid prefix length`)
        }
        list.addSubnet(addr!, prefix, type)
      }
    }
  })
  return list
}

export function createIpResolver(trust: TrustProxy, where = '/trustProxy'): IpResolver {
  const socketIp = (req: IncomingMessage) => {
    const a = req.socket?.remoteAddress
    return a ? stripMapped(a) : undefined
  }
  if (trust === false || trust === 0) return socketIp
  const forwarded = (req: IncomingMessage): string[] => {
    const h = req.headers['x-forwarded-for']
    if (!h) return []
    return (Array.isArray(h) ? h.join(',') : h).split(',').map((s) => stripMapped(s.trim())).filter((s) => isIP(s) !== 0)
  }
  if (trust === true) return (req) => forwarded(req)[0] ?? socketIp(req)
  if (typeof trust === 'number') {
    return (req) => {
      // socket, then X-F-F right to left: the `trust`-th hop back is the client.
      const chain = [socketIp(req), ...forwarded(req).reverse()].filter(Boolean) as string[]
      return chain[Math.min(trust, chain.length - 1)]
    }
  }
  const list = buildBlockList(trust, where)
  const trusted = (ip: string) => list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')
  return (req) => {
    const chain = [socketIp(req), ...forwarded(req).reverse()].filter(Boolean) as string[]
    for (const ip of chain) if (!trusted(ip)) return ip
    return chain[chain.length - 1]
  }
}
