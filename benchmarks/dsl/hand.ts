// The baseline: the two mappings as a careful engineer would write them by
// hand. Every other engine must produce output JSON-equal to these (keys whose
// value is undefined are absent, as on the wire).
import * as crypto from 'node:crypto';

type Obj = Record<string, any>;

/** One-shot SHA-256 hex: `crypto.hash` (Node ≥ 20.12) skips the Hash object. */
export const sha256: (s: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (s) => (crypto as unknown as { hash(alg: string, data: string): string }).hash('sha256', s)
    : (s) => crypto.createHash('sha256').update(s).digest('hex');

/** Meta's normalizations, shared by the engines that need a helper for them. */
export const normEmail = (s: unknown): string => (typeof s === 'string' ? s.trim().toLowerCase() : '');
export const phoneDigits = (s: unknown): string => (typeof s === 'string' ? s.replace(/\D+/g, '') : '');
export const unixSeconds = (iso: unknown): number => Math.floor(Date.parse(iso as string) / 1000);

export function capiHand(e: Obj): Obj {
  const c = e.context;
  const t = c.traits;
  const p = e.properties;
  const products: Obj[] = p.products;
  const n = products.length;
  const ids = new Array<string>(n);
  const contents = new Array<Obj>(n);
  let items = 0;
  for (let i = 0; i < n; i++) {
    const x = products[i]!;
    ids[i] = x.product_id;
    contents[i] = { id: x.product_id, quantity: x.quantity, item_price: x.price };
    items += x.quantity;
  }
  const email = normEmail(t?.email);
  const phone = phoneDigits(t?.phone);
  return {
    event_name: 'Purchase',
    event_time: unixSeconds(e.timestamp),
    event_id: e.messageId,
    action_source: 'website',
    event_source_url: c.page?.url,
    user_data: {
      em: email ? [sha256(email)] : undefined,
      ph: phone ? [sha256(phone)] : undefined,
      external_id: e.userId ? [sha256(e.userId)] : undefined,
      client_ip_address: c.ip,
      client_user_agent: c.userAgent,
      fbp: c.fbp,
      fbc: c.fbc,
    },
    custom_data: { value: p.revenue, currency: p.currency, content_ids: ids, contents, num_items: items },
  };
}

export function ga4Hand(e: Obj): Obj {
  const p = e.properties;
  const products: Obj[] = p.products;
  const n = products.length;
  const items = new Array<Obj>(n);
  for (let i = 0; i < n; i++) {
    const x = products[i]!;
    items[i] = {
      item_id: x.product_id,
      item_name: x.name,
      item_brand: x.brand,
      item_category: x.category,
      price: x.price,
      quantity: x.quantity,
      index: i,
    };
  }
  return {
    client_id: e.anonymousId,
    user_id: e.userId,
    events: [
      {
        name: 'purchase',
        params: {
          transaction_id: p.order_id,
          value: p.revenue,
          currency: p.currency,
          tax: p.tax,
          shipping: p.shipping,
          coupon: p.coupon,
          items,
        },
      },
    ],
  };
}
