/** The demo shop's products. The server is the source of truth for prices. */
export interface Product {
  product_id: string
  sku: string
  name: string
  brand: string
  category: string
  price: number
  image: string
  description: string
}

export const CURRENCY = 'USD'

export const PRODUCTS: readonly Product[] = [
  { product_id: 'p-1001', sku: 'TEE-ORG-M', name: 'Organic Cotton Tee', brand: 'Firstparty Goods', category: 'Apparel', price: 24, image: '👕', description: 'Heavyweight organic cotton, cut to last.' },
  { product_id: 'p-1002', sku: 'MUG-CER-350', name: 'Stoneware Mug', brand: 'Firstparty Goods', category: 'Kitchen', price: 16.5, image: '☕', description: '350 ml, glazed by hand, dishwasher safe.' },
  { product_id: 'p-1003', sku: 'BAG-CNV-01', name: 'Canvas Tote', brand: 'Firstparty Goods', category: 'Accessories', price: 19.99, image: '👜', description: 'Waxed canvas with leather handles.' },
  { product_id: 'p-1004', sku: 'NTB-DOT-A5', name: 'Dot-Grid Notebook', brand: 'Paper & Co', category: 'Stationery', price: 12, image: '📓', description: 'A5, 192 pages of 100 gsm paper.' },
]

export function findProduct(id: unknown): Product | undefined {
  return PRODUCTS.find((p) => p.product_id === id)
}
