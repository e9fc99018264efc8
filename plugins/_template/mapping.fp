// Segment events → Example Analytics events (POST /v1/events, one item of `events`).
// This is the plugin's default mapping: `send` receives what it returns. A user can
// replace it with `mapping:` or `mappingFile:` in their config, or turn it off with
// `mapping: false` (then `send` receives the Segment events unchanged).

let common = {
  id: event.messageId,
  user_id: event.userId,
  anonymous_id: event.anonymousId,
  time: unixMillis(event.timestamp),
}

on track {
  ...common
  kind = "event"
  name = event.event
  properties = event.properties
}

on page, screen {
  ...common
  kind = "event"
  name = event.type == "page" ? "Page Viewed" : "Screen Viewed"
  properties = { ...event.properties, title: event.name, url: event.context.page.url }
}

on identify {
  ...common
  kind = "profile"
  traits = event.traits
}

// group and alias have no Example Analytics equivalent.
default {
  drop
}
