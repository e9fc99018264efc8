// Segment events → Mixpanel. track, page and screen become events for /import; identify
// becomes a profile update for /engage ($set). `send` tells them apart (an event has
// `event`, a profile update `$set`), adds the project token and routes each to its API.
// Replace with `mapping:` / `mappingFile:` in the config, or `mapping: false`.

// Simplified ID Merge: distinct_id is the user id once known; $device_id / $user_id link the two.
let ids = {
  distinct_id: event.userId ?? event.anonymousId,
  "$device_id": event.anonymousId,
  "$user_id": event.userId,
  "$insert_id": event.messageId,
  time: unixMillis(event.timestamp),
  ip: event.context.ip,
  "$current_url": event.context.page.url,
  "$referrer": event.context.page.referrer,
  utm_source: event.context.campaign.source,
  utm_medium: event.context.campaign.medium,
  utm_campaign: event.context.campaign.name,
  utm_term: event.context.campaign.term,
  utm_content: event.context.campaign.content,
}

on track {
  event = event.event
  properties = { ...event.properties, ...ids }
}

on page {
  event = "Page Viewed"
  properties = { ...event.properties, name: event.name, category: event.category, ...ids }
}

on screen {
  event = "Screen Viewed"
  properties = { ...event.properties, name: event.name, ...ids }
}

on identify when event.userId != null or event.anonymousId != null {
  "$distinct_id" = event.userId ?? event.anonymousId
  "$ip" = event.context.ip ?? "0"
  // Mixpanel's reserved profile properties carry a $; other traits are kept as they are.
  "$set" = {
    ...event.traits,
    "$email": event.traits.email,
    "$name": event.traits.name ?? (event.traits.firstName and event.traits.lastName ? event.traits.firstName & " " & event.traits.lastName : null),
    "$first_name": event.traits.firstName,
    "$last_name": event.traits.lastName,
    "$phone": event.traits.phone,
    "$avatar": event.traits.avatar,
    "$created": event.traits.createdAt,
  }
}

// group and alias: Simplified ID Merge links ids through $device_id/$user_id, and group
// analytics needs per-project group keys: not sent by default.
default {
  drop
}
