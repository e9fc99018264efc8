// Realistic Segment track events (~1.5 KB of JSON each) with enough variety
// that no rule takes the same branch every time. Deterministic (seeded).

export function makeEvents(count: number): Record<string, unknown>[] {
  let state = 0x2545f491;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const names = ['Order Completed', 'Product Viewed', 'Checkout Started', 'Product Added', 'Signed Up', 'Page Scrolled'];
  const categories = ['Electronics', 'Books', 'Garden', 'Toys'];
  const consentIds = ['C0001', 'C0002', 'C0003', 'C0004', 'C0005'];
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const products = Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, j) => ({
      product_id: `p-${1000 + i * 7 + j}`,
      sku: `SKU-${(i * 31 + j * 17) % 9000}`,
      name: pick(['Noise-cancelling headphones', 'Garden hose 20m', 'Paperback novel', 'Wooden train set']),
      price: Math.round(rand() * 12000) / 100,
      quantity: 1 + Math.floor(rand() * 3),
      category: pick(categories),
    }));
    const allowed = consentIds.filter(() => rand() < 0.6);
    const hasUser = rand() < 0.7;
    out.push({
      type: 'track',
      event: pick(names),
      messageId: `ajs-next-${(1e12 + i * 7919).toString(36)}-${i}`,
      anonymousId: `a1b2c3d4-${(i * 2654435761 >>> 0).toString(16)}-4e5f-9a0b-1c2d3e4f5a6b`,
      ...(hasUser ? { userId: `user_${100000 + i}` } : {}),
      timestamp: new Date(Date.UTC(2025, 4, 1, 12, 0, i)).toISOString(),
      sentAt: new Date(Date.UTC(2025, 4, 1, 12, 0, i, 150)).toISOString(),
      receivedAt: new Date(Date.UTC(2025, 4, 1, 12, 0, i, 420)).toISOString(),
      context: {
        ip: `203.0.113.${i % 255}`,
        locale: pick(['en-US', 'de-DE', 'fr-FR']),
        userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
        library: { name: 'analytics.js', version: 'next-1.70.0' },
        page: {
          path: pick(['/checkout/payment', '/products/headphones', '/cart', '/checkout']),
          referrer: 'https://www.google.com/',
          search: pick(['', '?utm_source=newsletter&utm_medium=email', '?q=headphones']),
          title: 'Checkout — Example Store',
          url: 'https://shop.example.com/checkout/payment',
        },
        campaign: { name: 'spring_sale', source: pick(['google', 'newsletter', 'facebook']), medium: pick(['cpc', 'email', 'social']) },
        traits: {
          email: rand() < 0.8 ? `Customer.${i}@Example.com ` : '',
          ...(rand() < 0.5 ? { phone: '+1 (415) 555-0134' } : {}),
          name: 'Jordan Example',
        },
        consent: {
          categoryPreferences: {
            Advertising: rand() < 0.5,
            Analytics: rand() < 0.9,
            Functional: true,
            DataSharing: rand() < 0.3,
          },
        },
        consentManagement: {
          provider: 'oneTrust',
          allowedConsentIds: allowed,
          deniedConsentIds: consentIds.filter((c) => !allowed.includes(c)),
          resolutionStrategy: 'and',
        },
      },
      properties: {
        order_id: `ord_${50000 + i}`,
        revenue: Math.round(rand() * 30000) / 100,
        ...(rand() < 0.8 ? { currency: 'USD' } : {}),
        products,
      },
      integrations: { All: true, Mixpanel: false },
    });
  }
  return out;
}
