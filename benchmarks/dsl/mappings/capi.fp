// Meta CAPI Purchase from a Segment "Order Completed" (firstparty DSL).
on track "Order Completed" {
  let c = event.context
  let p = event.properties
  event_name = "Purchase"
  event_time = unixSeconds(event.timestamp)
  event_id = event.messageId
  action_source = "website"
  event_source_url = c.page.url
  let em = hashEmail(c.traits.email)
  let ph = hashPhone(c.traits.phone)
  user_data = {
    em: em == null ? null : [em],
    ph: ph == null ? null : [ph],
    external_id: event.userId == null ? null : [sha256(event.userId)],
    client_ip_address: c.ip,
    client_user_agent: c.userAgent,
    fbp: c.fbp,
    fbc: c.fbc
  }
  custom_data = {
    value: p.revenue,
    currency: p.currency,
    content_ids: map(p.products, x => x.product_id),
    contents: map(p.products, x => { id: x.product_id, quantity: x.quantity, item_price: x.price }),
    num_items: sum(p.products, x => x.quantity)
  }
}
