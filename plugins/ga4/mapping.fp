// The ga4 plugin's default mapping: one Segment event → one GA4 Measurement Protocol
// request body ({ client_id, user_id, timestamp_micros, consent, events: [one event] }).
// The plugin merges bodies of the same client into requests of up to 25 events and
// checks GA4's name and size limits before sending.
// Reference: https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference

// client_id: the _ga cookie ("GA1.1.<random>.<seconds>" → "<random>.<seconds>"), else the
// anonymousId. To read the cookie from elsewhere, copy this file, change `gaCookie`, and
// point `mappingFile:` at your copy (the plugin also accepts a raw "GA1.x.y.z" client_id).
let gaCookie = event.context.cookies._ga
let ga = split(gaCookie, ".")
let clientId = count(ga) == 4 ? ga[2] & "." & ga[3] : event.anonymousId

// session_id: the GA4 session cookie "_ga_<container>" (GS1: "GS1.1.<session>.…",
// GS2: "GS2.1.s<session>$o…"), else context.sessionId (analytics.js) or properties.session_id.
let gaSession = split(event.context.cookies[first(keys(event.context.cookies), k => startsWith(k, "_ga_"))], ".")
let cookieSession = startsWith(gaSession[0], "GS2") ? substr(split(gaSession[2], "$")[0], 1) : gaSession[2]
let sessionId = toString(event.properties.session_id ?? event.context.sessionId ?? cookieSession)
// Realtime reports need engagement_time_msec with session_id; 1 ms when the event has none.
let engagement = toInt(event.properties.engagement_time_msec) ?? (sessionId != null ? 1 : null)
let session = { session_id: sessionId, engagement_time_msec: engagement }

// Segment consent for advertising → GA4's consent signals (left out when unknown).
let ads = event.context.consent.categoryPreferences.advertising ?? event.context.consent.categoryPreferences.marketing
let consent = ads == null ? null : { ad_user_data: ads ? "GRANTED" : "DENIED", ad_personalization: ads ? "GRANTED" : "DENIED" }

let common = {
  client_id: clientId,
  user_id: event.userId,
  timestamp_micros: unixMillis(event.timestamp) * 1000,
  consent,
}

let currency = upper(event.properties.currency ?? "USD")

// Segment products[] → GA4 items[].
let items = map(event.properties.products, p => {
  item_id: toString(p.product_id ?? p.sku),
  item_name: p.name,
  item_brand: p.brand,
  item_category: p.category,
  item_variant: p.variant,
  coupon: p.coupon,
  index: toInt(p.position),
  price: toNumber(p.price),
  quantity: toInt(p.quantity ?? 1),
})

// The product of a single-product event (Product Viewed, Product Added, …).
let item = {
  item_id: toString(event.properties.product_id ?? event.properties.sku),
  item_name: event.properties.name,
  item_brand: event.properties.brand,
  item_category: event.properties.category,
  item_variant: event.properties.variant,
  coupon: event.properties.coupon,
  index: toInt(event.properties.position),
  price: toNumber(event.properties.price),
  quantity: toInt(event.properties.quantity ?? 1),
}
let itemValue = toNumber(event.properties.value) ?? toNumber(event.properties.price) * toInt(event.properties.quantity ?? 1)

on track "Product Viewed", "Product Added", "Product Removed", "Product Added to Wishlist" {
  ...common
  events = [{
    name: event.event == "Product Viewed" ? "view_item"
      : event.event == "Product Added" ? "add_to_cart"
      : event.event == "Product Removed" ? "remove_from_cart"
      : "add_to_wishlist",
    params: { ...session, currency, value: itemValue, items: [item] },
  }]
}

on track "Product Clicked" {
  ...common
  events = [{ name: "select_item", params: { ...session, item_list_name: event.properties.list_name, items: [item] } }]
}

on track "Product List Viewed" {
  ...common
  events = [{ name: "view_item_list", params: { ...session, item_list_id: event.properties.list_id, item_list_name: event.properties.category, items } }]
}

on track "Products Searched" {
  ...common
  events = [{ name: "search", params: { ...session, search_term: event.properties.query } }]
}

on track "Cart Viewed", "Checkout Started" {
  ...common
  events = [{
    name: event.event == "Cart Viewed" ? "view_cart" : "begin_checkout",
    params: {
      ...session,
      currency,
      value: toNumber(event.properties.value ?? event.properties.revenue ?? event.properties.total) ?? sum(items, i => i.price * i.quantity),
      coupon: event.properties.coupon,
      items,
    },
  }]
}

on track "Payment Info Entered" {
  ...common
  events = [{ name: "add_payment_info", params: { ...session, currency, payment_type: event.properties.payment_method, items } }]
}

on track "Order Completed", "Order Refunded" {
  ...common
  events = [{
    name: event.event == "Order Completed" ? "purchase" : "refund",
    params: {
      ...session,
      transaction_id: toString(event.properties.order_id),
      affiliation: event.properties.affiliation,
      value: toNumber(event.properties.revenue ?? event.properties.total ?? event.properties.value),
      currency,
      tax: toNumber(event.properties.tax),
      shipping: toNumber(event.properties.shipping),
      coupon: event.properties.coupon,
      items,
    },
  }]
}

on track "Promotion Viewed", "Promotion Clicked" {
  ...common
  events = [{
    name: event.event == "Promotion Viewed" ? "view_promotion" : "select_promotion",
    params: {
      ...session,
      promotion_id: event.properties.promotion_id,
      promotion_name: event.properties.name,
      creative_name: event.properties.creative,
      creative_slot: event.properties.position,
    },
  }]
}

on track "Signed Up", "Signed In" {
  ...common
  events = [{ name: event.event == "Signed Up" ? "sign_up" : "login", params: { ...session, method: event.properties.method } }]
}

on page {
  ...common
  events = [{
    name: "page_view",
    params: {
      ...session,
      page_location: event.context.page.url ?? event.properties.url,
      page_title: event.context.page.title ?? event.properties.title ?? event.name,
      page_referrer: event.context.page.referrer ?? event.properties.referrer,
    },
  }]
}

// Any other track event: a custom event, its name in snake_case, its properties as
// parameters. The plugin refuses (permanently, naming the limit) one GA4 would drop.
on track {
  ...common
  events = [{
    name: lower(replace(replace(replace(trim(event.event), " ", "_"), "-", "_"), ".", "_")),
    params: { ...event.properties, ...session },
  }]
}

// identify, screen, group, alias: GA4 takes no event for them.
default {
  drop
}
