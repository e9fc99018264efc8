// Segment events → Amplitude HTTP V2 events (one item of `events`; `send` adds api_key).
// Replace with `mapping:` / `mappingFile:` in the config, or `mapping: false`.

let common = {
  user_id: event.userId,
  device_id: event.anonymousId,
  insert_id: event.messageId,
  time: unixMillis(event.timestamp),
  ip: event.context.ip,
  language: event.context.locale,
  library: "firstparty",
}

on track {
  ...common
  event_type = event.event
  event_properties = event.properties
}

on page {
  ...common
  event_type = "Page Viewed"
  event_properties = { ...event.properties, name: event.name, category: event.category, url: event.context.page.url, referrer: event.context.page.referrer }
}

on screen {
  ...common
  event_type = "Screen Viewed"
  event_properties = { ...event.properties, name: event.name }
}

// identify: Amplitude's $identify event sets user properties without counting as an event.
on identify {
  ...common
  event_type = "$identify"
  user_properties = { "$set": event.traits ?? {} }
}

// group and alias: Amplitude groups need an account add-on and per-project group types.
default {
  drop
}
