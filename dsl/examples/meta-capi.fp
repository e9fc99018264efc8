// Segment events → Meta Conversions API server events (one item of `data`).
// https://developers.facebook.com/docs/marketing-api/conversions-api/parameters
//
// user_data is normalized and SHA-256 hashed as Meta requires; client IP, user
// agent, fbp and fbc are sent as they are. event_id = messageId, so Meta
// deduplicates this event against the browser pixel's.

let traits = event.traits ?? event.context.traits
let address = traits.address

let base = {
  event_time: unixSeconds(event.timestamp),
  event_id: event.messageId,
  action_source: event.context.app != null ? "app" : event.context.page != null ? "website" : "other",
  event_source_url: event.context.page.url,
  user_data: {
    em: compact([hashEmail(traits.email)]),
    ph: compact([hashPhone(traits.phone)]),
    fn: hashText(traits.firstName ?? traits.first_name),
    ln: hashText(traits.lastName ?? traits.last_name),
    ct: hashText(replace(address.city, " ", "")),
    st: hashText(address.state),
    zp: hashText(replace(address.postalCode ?? address.postal_code, " ", "")),
    country: hashText(address.country),
    external_id: compact([sha256(event.userId)]),
    client_ip_address: event.context.ip,
    client_user_agent: event.context.userAgent,
    fbp: event.context.fbp ?? event.context.cookies._fbp,
    fbc: event.context.fbc ?? event.context.cookies._fbc,
  },
}

let contents = map(event.properties.products, p => {
  id: p.product_id ?? p.sku,
  quantity: toInt(p.quantity ?? 1),
  item_price: toNumber(p.price),
})

on track "Order Completed" {
  ...base
  event_name = "Purchase"
  custom_data = {
    value: toNumber(event.properties.revenue ?? event.properties.total) ?? 0,
    currency: upper(event.properties.currency ?? "USD"),
    order_id: event.properties.order_id,
    content_type: "product",
    content_ids: map(contents, c => c.id),
    contents,
    num_items: sum(contents, c => c.quantity),
  }
}

on track "Product Added", "Product Viewed" {
  ...base
  event_name = event.event == "Product Added" ? "AddToCart" : "ViewContent"
  custom_data = {
    value: toNumber(event.properties.price) ?? 0,
    currency: upper(event.properties.currency ?? "USD"),
    content_type: "product",
    content_ids: compact([event.properties.product_id ?? event.properties.sku]),
  }
}

on track "Checkout Started" {
  ...base
  event_name = "InitiateCheckout"
  custom_data.value = toNumber(event.properties.value ?? event.properties.revenue)
  custom_data.currency = upper(event.properties.currency ?? "USD")
  custom_data.num_items = sum(contents, c => c.quantity)
}

on track "Signed Up" {
  ...base
  event_name = "CompleteRegistration"
}

on page {
  ...base
  event_name = "PageView"
}

default {
  drop
}
