// ga4.fp without items[].index: the stand-in the harness runs (setting the index in
// JS after the mapping) only if ga4.fp does not compile. ga4.fp uses map((x, i) => ...).
on track "Order Completed" {
  let p = event.properties
  client_id = event.anonymousId
  user_id = event.userId
  events = [{
    name: "purchase",
    params: {
      transaction_id: p.order_id,
      value: p.revenue,
      currency: p.currency,
      tax: p.tax,
      shipping: p.shipping,
      coupon: p.coupon,
      items: map(p.products, x => {
        item_id: x.product_id,
        item_name: x.name,
        item_brand: x.brand,
        item_category: x.category,
        price: x.price,
        quantity: x.quantity
      })
    }
  }]
}
