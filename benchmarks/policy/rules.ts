// The benchmarked rules, each with the function an engineer would write by
// hand for the same decision (same results on the benchmark events).
type Event = Record<string, any>;

export interface RuleSpec {
  readonly name: string;
  readonly rule: unknown;
  readonly hand: (event: any) => unknown;
}

export const RULES: readonly RuleSpec[] = [
  {
    name: 'consent in',
    rule: { in: ['C0004', { var: 'context.consentManagement.allowedConsentIds' }] },
    hand: (e: Event) => {
      const ids = e.context?.consentManagement?.allowedConsentIds;
      return Array.isArray(ids) && ids.includes('C0004');
    },
  },
  {
    name: 'event list and (revenue ≥ 100 or currency)',
    rule: {
      and: [
        { in: [{ var: 'event' }, ['Order Completed', 'Checkout Started', 'Product Added']] },
        { or: [{ '>=': [{ var: 'properties.revenue' }, 100] }, { var: 'properties.currency' }] },
      ],
    },
    hand: (e: Event) => {
      const name = e.event;
      if (name !== 'Order Completed' && name !== 'Checkout Started' && name !== 'Product Added') return false;
      const p = e.properties;
      if ((p?.revenue ?? null) >= 100) return true;
      return p?.currency ?? null;
    },
  },
  {
    name: 'some over products',
    rule: {
      some: [
        { var: 'properties.products' },
        { and: [{ '>': [{ var: 'price' }, 50] }, { '==': [{ var: 'category' }, 'Electronics'] }] },
      ],
    },
    hand: (e: Event) => {
      const products = e.properties?.products;
      if (!Array.isArray(products)) return false;
      for (const p of products) if (p.price > 50 && p.category === 'Electronics') return true;
      return false;
    },
  },
  {
    name: 'string ops (substr, in, cat)',
    rule: {
      or: [
        { '==': [{ substr: [{ var: 'context.page.path' }, 0, 9] }, '/checkout'] },
        { in: ['utm_source=newsletter', { var: 'context.page.search' }] },
        { '==': [{ cat: [{ var: 'context.campaign.source' }, '/', { var: 'context.campaign.medium' }] }, 'google/cpc'] },
      ],
    },
    hand: (e: Event) => {
      const page = e.context?.page;
      if (typeof page?.path === 'string' && page.path.startsWith('/checkout')) return true;
      if (typeof page?.search === 'string' && page.search.includes('utm_source=newsletter')) return true;
      const c = e.context?.campaign;
      return `${c?.source ?? ''}/${c?.medium ?? ''}` === 'google/cpc';
    },
  },
  {
    name: '! / missing / missing_some',
    rule: {
      and: [
        { '!': { missing: ['userId', 'context.traits.email'] } },
        { '!!': { var: 'context.consent.categoryPreferences.Advertising' } },
        { '!': { missing_some: [1, ['context.traits.phone', 'properties.phone']] } },
      ],
    },
    hand: (e: Event) => {
      const present = (v: unknown) => v !== undefined && v !== null && v !== '';
      const traits = e.context?.traits;
      return present(e.userId) && present(traits?.email) &&
        !!e.context?.consent?.categoryPreferences?.Advertising &&
        (present(traits?.phone) || present(e.properties?.phone));
    },
  },
  {
    name: 'reduce over products',
    rule: {
      reduce: [
        { var: 'properties.products' },
        { '+': [{ var: 'accumulator' }, { '*': [{ var: 'current.price' }, { var: 'current.quantity' }] }] },
        0,
      ],
    },
    hand: (e: Event) => {
      const products = e.properties?.products;
      if (!Array.isArray(products)) return 0;
      let total = 0;
      for (const p of products) total += p.price * p.quantity;
      return total;
    },
  },
];
