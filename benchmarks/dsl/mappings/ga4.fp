// GA4 purchase from a Segment "Order Completed" (firstparty DSL).
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
      items: map(p.products, (x, i) => {
        item_id: x.product_id,
        item_name: x.name,
        item_brand: x.brand,
        item_category: x.category,
        price: x.price,
        quantity: x.quantity,
        index: i
      })
    }
  }]
}
