// Segment e-commerce "Order Completed" track events (~1.5 KB of JSON each),
// deterministic (seeded), varied where a mapping has to branch: email present
// or not (with stray case and whitespace), phone in several formats or absent,
// userId and the Meta cookies sometimes absent, coupon sometimes absent, 3–5
// products.

export function makeOrders(count: number): Record<string, unknown>[] {
  let state = 0x6d2b79f5;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const catalogue = [
    { name: 'Noise-cancelling headphones', brand: 'Sonora', category: 'Electronics' },
    { name: 'Garden hose 20m', brand: 'GreenLine', category: 'Garden' },
    { name: 'Paperback novel', brand: 'Quire Press', category: 'Books' },
    { name: 'Wooden train set', brand: 'Little Tracks', category: 'Toys' },
    { name: 'USB-C charger 65W', brand: 'Voltic', category: 'Electronics' },
  ];
  const phones = ['+1 (415) 555-0134', '+44 20 7946 0958', '+49 30 901820', '+1-212-555-0199'];
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const products = Array.from({ length: 3 + Math.floor(rand() * 3) }, (_, j) => {
      const item = pick(catalogue);
      return {
        product_id: `p-${1000 + ((i * 7 + j * 13) % 500)}`,
        sku: `SKU-${(i * 31 + j * 17) % 9000}`,
        name: item.name,
        brand: item.brand,
        category: item.category,
        price: Math.round(rand() * 12000) / 100,
        quantity: 1 + Math.floor(rand() * 3),
      };
    });
    const subtotal = Math.round(products.reduce((n, p) => n + p.price * p.quantity, 0) * 100) / 100;
    const email = rand() < 0.85 ? pick([`Customer.${i}@Example.com `, ` jordan.${i}@example.org`, `ALEX${i}@SHOP.EXAMPLE`]) : '';
    const phone = rand() < 0.6 ? pick(phones) : undefined;
    out.push({
      type: 'track',
      event: 'Order Completed',
      messageId: `ajs-next-${(1e12 + i * 7919).toString(36)}-${i}`,
      anonymousId: `a1b2c3d4-${((i * 2654435761) >>> 0).toString(16)}-4e5f-9a0b-1c2d3e4f5a6b`,
      ...(rand() < 0.7 ? { userId: `user_${100000 + i}` } : {}),
      timestamp: new Date(Date.UTC(2025, 4, 1, 12, 0, i, i % 1000)).toISOString(),
      sentAt: new Date(Date.UTC(2025, 4, 1, 12, 0, i, 150)).toISOString(),
      receivedAt: new Date(Date.UTC(2025, 4, 1, 12, 0, i, 420)).toISOString(),
      context: {
        ip: `203.0.113.${i % 255}`,
        locale: pick(['en-US', 'de-DE', 'fr-FR']),
        userAgent:
          'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
        library: { name: 'analytics.js', version: 'next-1.70.0' },
        page: {
          path: '/checkout/confirmation',
          referrer: 'https://shop.example.com/checkout/payment',
          search: pick(['', '?utm_source=newsletter&utm_medium=email']),
          title: 'Thank you — Example Store',
          url: `https://shop.example.com/checkout/confirmation?order=${50000 + i}`,
        },
        ...(rand() < 0.8 ? { fbp: `fb.1.1714564800000.${1000000 + i}` } : {}),
        ...(rand() < 0.3 ? { fbc: `fb.1.1714564800000.IwAR2xYz${i}` } : {}),
        traits: {
          email,
          ...(phone ? { phone } : {}),
          name: 'Jordan Example',
        },
      },
      properties: {
        checkout_id: `chk_${90000 + i}`,
        order_id: `ord_${50000 + i}`,
        affiliation: 'Example Store',
        total: Math.round((subtotal + 4.99 + subtotal * 0.08) * 100) / 100,
        subtotal,
        revenue: subtotal,
        shipping: 4.99,
        tax: Math.round(subtotal * 8) / 100,
        discount: 0,
        ...(rand() < 0.4 ? { coupon: pick(['SPRING10', 'WELCOME5']) } : {}),
        currency: pick(['USD', 'EUR']),
        products,
      },
      integrations: { All: true },
    });
  }
  return out;
}
