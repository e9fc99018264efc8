/**
 * Where each class of personal data can be in an event: the Segment-spec fields made
 * for it, the spec fields that hold free text (URLs, search queries, campaign values),
 * and everything else — any key the spec does not name, in properties, traits,
 * context or at the top level — which may hold any class under any name, as a whole
 * value or written inside text.
 *
 * The one trust assumption: a field the Segment spec names for something else
 * (`properties.order_id`, `properties.revenue`, `products[].sku`, `context.userAgent`,
 * `anonymousId`) holds what the spec says, as a scalar. docs/explain.md says so.
 */
import { ANY, DEEP, key, type PSeg } from './patterns.js'
import { DATA_CLASSES, type DataClass } from './types.js'

export type Certainty = 'yes' | 'possibly'

export interface Location {
  path: PSeg[]
  classes: Partial<Record<DataClass, Certainty>>
  /** Why a `possibly` class may be here. */
  why: string
  /** How the personal-data sweep sees it. */
  sweep: 'by-key' | 'by-value' | 'envelope' | 'address-object'
}

type Node = {
  cls?: Partial<Record<DataClass, Certainty>>
  why?: string
  /** Named children; every other key is free-form. */
  children?: Record<string, Node>
  /** Array items. */
  items?: Node
  /** The whole subtree has these classes (no free-form remainder). */
  region?: boolean
  envelope?: boolean
}

const SPEC: Node = {}
const FREE_TEXT: Node = {
  cls: { free_text: 'yes', email: 'possibly', phone: 'possibly', name: 'possibly', address: 'possibly', user_id: 'possibly', ip: 'possibly' },
  why: 'free text (a URL, a query, a campaign value) can carry any personal data written in it',
}
const ID: Node = { cls: { user_id: 'yes' } }
const EMAIL: Node = { cls: { email: 'yes' } }
const PHONE: Node = { cls: { phone: 'yes' } }
const NAME: Node = { cls: { name: 'yes' } }

const ADDRESS: Node = { children: {}, cls: { address: 'yes' }, why: '' }

function person(): Node {
  return {
    children: {
      email: EMAIL, phone: PHONE,
      name: NAME, firstName: NAME, lastName: NAME, first_name: NAME, last_name: NAME, username: NAME,
      address: ADDRESS,
      id: ID, userId: ID, user_id: ID, anonymousId: ID,
      age: SPEC, gender: SPEC, birthday: SPEC, createdAt: SPEC, title: SPEC, plan: SPEC, logins: SPEC,
    },
  }
}

const PRODUCT: Node = {
  children: Object.fromEntries(['product_id', 'sku', 'category', 'name', 'brand', 'variant', 'price', 'quantity', 'coupon', 'position', 'url', 'image_url'].map((k) => [k, SPEC])),
}

const PROPERTIES: Node = {
  children: {
    ...Object.fromEntries([
      'order_id', 'checkout_id', 'cart_id', 'revenue', 'total', 'value', 'tax', 'shipping', 'discount', 'coupon', 'currency',
      'product_id', 'sku', 'category', 'name', 'brand', 'variant', 'price', 'quantity', 'position', 'list_id', 'list_name',
      'promotion_id', 'creative', 'affiliation', 'payment_method', 'method', 'session_id', 'engagement_time_msec', 'step',
      'shipping_method', 'label',
    ].map((k) => [k, SPEC])),
    products: { items: PRODUCT },
    query: FREE_TEXT, url: FREE_TEXT, path: FREE_TEXT, referrer: FREE_TEXT, search: FREE_TEXT, title: FREE_TEXT,
    email: EMAIL, phone: PHONE,
  },
}

const USER_ID_OR_CONTACT: Node = {
  cls: { user_id: 'yes', email: 'possibly', phone: 'possibly' },
  why: 'sites use an email address or a phone number as the user id',
  envelope: true,
}

const EVENT: Node = {
  children: {
    type: SPEC, event: SPEC, messageId: SPEC, timestamp: SPEC, originalTimestamp: SPEC, sentAt: SPEC, receivedAt: SPEC,
    channel: SPEC, version: SPEC, groupId: SPEC, name: SPEC, category: SPEC, writeKey: SPEC,
    userId: USER_ID_OR_CONTACT,
    previousId: USER_ID_OR_CONTACT,
    anonymousId: { cls: { user_id: 'yes' }, envelope: true },
    properties: PROPERTIES,
    traits: person(),
    context: {
      children: {
        ip: { cls: { ip: 'yes' } },
        traits: person(),
        page: { children: { url: FREE_TEXT, referrer: FREE_TEXT, search: FREE_TEXT, path: FREE_TEXT, title: FREE_TEXT } },
        campaign: { ...FREE_TEXT, region: true },
        location: { cls: { address: 'yes' }, region: true },
        device: { children: { id: ID, advertisingId: ID, type: SPEC, manufacturer: SPEC, model: SPEC, name: SPEC, adTrackingEnabled: SPEC } },
        cookies: { children: { _ga: ID, _fbp: ID, _fbc: ID, ajs_user_id: ID, ajs_anonymous_id: ID, ajs_group_id: SPEC } },
        fbp: ID, fbc: ID,
        library: { region: true }, os: { region: true }, screen: { region: true }, app: { region: true }, network: { region: true },
        consent: { region: true }, consentManagement: { region: true }, userAgentData: { region: true },
        gpc: SPEC, locale: SPEC, timezone: SPEC, userAgent: SPEC, sessionId: SPEC, groupId: SPEC, instance: SPEC,
      },
    },
  },
}

const ALL_POSSIBLY = Object.fromEntries(DATA_CLASSES.map((c) => [c, 'possibly' as Certainty])) as Record<DataClass, Certainty>

/** Every place personal data can be, with its classes. */
export function eventLocations(): Location[] {
  const out: Location[] = []
  const walk = (node: Node, path: PSeg[]) => {
    const at = path.map((s) => (s.k === 'key' ? s.key : '*')).join('.')
    if (node === ADDRESS) {
      // The sweep sees the scalar children of an `address` object as addresses; deeper
      // objects it does not walk.
      out.push({ path: [...path, ANY], classes: { address: 'yes' }, why: '', sweep: 'address-object' })
      out.push({ path: [...path, ANY, ANY, DEEP], classes: ALL_POSSIBLY, why: `${at} is an object: its nested objects are free-form`, sweep: 'by-value' })
      return
    }
    if (node.cls && Object.keys(node.cls).length) {
      out.push({
        path: node.region ? [...path, DEEP] : path,
        classes: node.cls,
        why: node.why ?? '',
        sweep: node.envelope ? 'envelope' : node.cls.free_text ? 'by-value' : 'by-key',
      })
      if (node.region) return
    } else if (node.region) return
    if (node.items) walk(node.items, [...path, ANY])
    if (node.children) {
      for (const [k, child] of Object.entries(node.children)) walk(child, [...path, key(k)])
      const named = new Set(Object.keys(node.children))
      out.push({
        path: [...path, { k: 'any', except: named }, DEEP],
        classes: ALL_POSSIBLY,
        why: `${at ? `${at}.` : ''}<any other key> is free-form: any value, under any name, as a whole or inside text`,
        sweep: 'by-value',
      })
    }
  }
  walk(EVENT, [])
  return out
}
