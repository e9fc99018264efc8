// The meta-capi plugin's default mapping: one Segment event → one Conversions API
// server event (one item of `data`).
// Reference: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters
//
// Customer information is normalized the way Meta requires and SHA-256 hashed here, so
// the mapping shows what leaves hashed. The plugin hashes again anything that reaches
// it unhashed (a custom mapping that forgot to), never twice. Client IP, user agent,
// fbp and fbc are sent as they are. event_id = messageId, so Meta deduplicates this
// event against the browser pixel's own (give the pixel the same eventID).

let traits = event.traits ?? event.context.traits
let address = traits.address
let country = lower(trim(address.country))
let country2 = length(country) == 2 ? country : null

// National phone numbers need a calling code; it comes from the address country.
let callingCodes = {
  us: "1", ca: "1", gb: "44", ie: "353", fr: "33", de: "49", at: "43", ch: "41", nl: "31", be: "32",
  es: "34", it: "39", pt: "351", se: "46", no: "47", dk: "45", fi: "358", pl: "48", au: "61", nz: "64",
  br: "55", mx: "52", in: "91", jp: "81",
}

// Names: lower case, no punctuation. City and state: also no spaces.
let first = trim(traits.firstName ?? traits.first_name)
let last = trim(traits.lastName ?? traits.last_name)
let city = replace(replace(replace(replace(replace(lower(address.city), " ", ""), "-", ""), ".", ""), "'", ""), ",", "")
let state = replace(replace(replace(lower(address.state), " ", ""), "-", ""), ".", "")
// Zip: lower case, no spaces or dashes; US: the first five digits.
let zip = replace(replace(lower(trim(toString(address.postalCode ?? address.postal_code ?? address.zip))), " ", ""), "-", "")

let userData = {
  em: compact([hashEmail(traits.email)]),
  ph: compact([hashPhone(traits.phone, callingCodes[country2])]),
  fn: hashText(replace(replace(replace(replace(lower(first), ".", ""), "'", ""), ",", ""), "-", "")),
  ln: hashText(replace(replace(replace(replace(lower(last), ".", ""), "'", ""), ",", ""), "-", "")),
  ge: hashText(substr(lower(trim(traits.gender)), 0, 1)),
  db: sha256(replace(toDate(traits.birthday), "-", "")),
  ct: city != "" ? hashText(city) : null,
  st: state != "" ? hashText(state) : null,
  zp: zip != "" ? hashText(country2 == "us" ? substr(zip, 0, 5) : zip) : null,
  country: hashText(country2),
  external_id: compact([sha256(event.userId)]),
  client_ip_address: event.context.ip,
  client_user_agent: event.context.userAgent,
  fbp: event.context.fbp ?? event.context.cookies._fbp,
  fbc: event.context.fbc ?? event.context.cookies._fbc,
}

let base = {
  event_time: unixSeconds(event.timestamp),
  event_id: event.messageId,
  // Events from apps say so; the plugin's actionSource setting (default website) fills the rest.
  action_source: event.context.app != null ? "app" : null,
  event_source_url: event.context.page.url,
  user_data: userData,
}

let contents = map(event.properties.products, p => {
  id: toString(p.product_id ?? p.sku),
  quantity: toInt(p.quantity ?? 1),
  item_price: toNumber(p.price),
})

let currency = upper(event.properties.currency ?? "USD")

on track "Order Completed" {
  ...base
  event_name = "Purchase"
  custom_data = {
    value: toNumber(event.properties.revenue ?? event.properties.total ?? event.properties.value) ?? 0,
    currency,
    order_id: toString(event.properties.order_id),
    content_type: "product",
    content_ids: map(contents, c => c.id),
    contents,
    num_items: sum(contents, c => c.quantity),
  }
}

on track "Product Viewed", "Product Added", "Product Added to Wishlist" {
  ...base
  event_name = event.event == "Product Viewed" ? "ViewContent" : event.event == "Product Added" ? "AddToCart" : "AddToWishlist"
  custom_data = {
    value: toNumber(event.properties.price) * toInt(event.properties.quantity ?? 1) ?? 0,
    currency,
    content_type: "product",
    content_name: event.properties.name,
    content_category: event.properties.category,
    content_ids: compact([toString(event.properties.product_id ?? event.properties.sku)]),
    contents: [{ id: toString(event.properties.product_id ?? event.properties.sku), quantity: toInt(event.properties.quantity ?? 1), item_price: toNumber(event.properties.price) }],
  }
}

on track "Checkout Started" {
  ...base
  event_name = "InitiateCheckout"
  custom_data = {
    value: toNumber(event.properties.value ?? event.properties.revenue ?? event.properties.total) ?? sum(contents, c => c.item_price * c.quantity),
    currency,
    content_type: "product",
    content_ids: map(contents, c => c.id),
    contents,
    num_items: sum(contents, c => c.quantity),
  }
}

on track "Payment Info Entered" {
  ...base
  event_name = "AddPaymentInfo"
  custom_data = { currency, content_ids: map(contents, c => c.id) }
}

on track "Products Searched" {
  ...base
  event_name = "Search"
  custom_data = { search_string: event.properties.query }
}

on track "Signed Up" {
  ...base
  event_name = "CompleteRegistration"
  custom_data = { status: "completed" }
}

on page {
  ...base
  event_name = "PageView"
}

// Other events (identify, custom track events, …) are not sent: Meta optimizes ads on
// its standard events. Add rules for custom conversions in your own copy.
default {
  drop
}
