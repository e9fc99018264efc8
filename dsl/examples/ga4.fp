// Segment e-commerce events → GA4 Measurement Protocol (/mp/collect) request bodies.
// https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference
//
// Every rule builds one request: client_id, user_id, timestamp_micros and one event.
// Events no rule names are dropped (GA4 only gets what it can use).

// The _ga cookie is "GA1.1.<random>.<seconds>"; its client id is the last two parts.
let ga = split(event.context.cookies._ga, ".")
let clientId = count(ga) == 4 ? ga[2] & "." & ga[3] : event.anonymousId

// Segment's products[] → GA4 items[].
let items = map(event.properties.products, p => {
  item_id: p.product_id ?? p.sku,
  item_name: p.name,
  item_brand: p.brand,
  item_category: p.category,
  item_variant: p.variant,
  coupon: p.coupon,
  price: toNumber(p.price),
  quantity: toInt(p.quantity ?? 1),
})

// One product (Product Viewed, Product Added) as a one-item list.
let item = {
  item_id: event.properties.product_id ?? event.properties.sku,
  item_name: event.properties.name,
  item_brand: event.properties.brand,
  item_category: event.properties.category,
  item_variant: event.properties.variant,
  price: toNumber(event.properties.price),
  quantity: toInt(event.properties.quantity ?? 1),
}

let common = {
  client_id: clientId,
  user_id: event.userId,
  timestamp_micros: unixMillis(event.timestamp) * 1000,
}

on track "Order Completed" {
  ...common
  events = [{
    name: "purchase",
    params: {
      transaction_id: event.properties.order_id,
      affiliation: event.properties.affiliation,
      value: toNumber(event.properties.revenue ?? event.properties.total),
      currency: upper(event.properties.currency ?? "USD"),
      tax: toNumber(event.properties.tax),
      shipping: toNumber(event.properties.shipping),
      coupon: event.properties.coupon,
      items,
    },
  }]
}

on track "Checkout Started" {
  ...common
  events = [{
    name: "begin_checkout",
    params: {
      value: toNumber(event.properties.value ?? event.properties.revenue),
      currency: upper(event.properties.currency ?? "USD"),
      coupon: event.properties.coupon,
      items,
    },
  }]
}

on track "Product Viewed", "Product Added" {
  ...common
  events = [{
    name: event.event == "Product Viewed" ? "view_item" : "add_to_cart",
    params: {
      currency: upper(event.properties.currency ?? "USD"),
      value: toNumber(event.properties.price) * toInt(event.properties.quantity ?? 1),
      items: [item],
    },
  }]
}

on page {
  ...common
  events = [{
    name: "page_view",
    params: {
      page_location: event.context.page.url ?? event.properties.url,
      page_title: event.context.page.title ?? event.properties.title,
      page_referrer: event.context.page.referrer ?? event.properties.referrer,
    },
  }]
}

default {
  drop
}
