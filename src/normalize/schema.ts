/**
 * The canonical event: Segment's spec, six types. Extra fields are kept (clients send
 * `channel`, `version`, vendor fields); only the fields below are checked.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

const Id = Type.Union([Type.String({ maxLength: 1024 }), Type.Number()])
const Obj = Type.Record(Type.String(), Type.Unknown())
const Time = Type.String({ maxLength: 64 })

const Common = {
  messageId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  userId: Type.Optional(Type.Union([Id, Type.Null()])),
  anonymousId: Type.Optional(Type.Union([Id, Type.Null()])),
  context: Type.Optional(Obj),
  integrations: Type.Optional(Obj),
  timestamp: Type.Optional(Time),
  originalTimestamp: Type.Optional(Time),
  sentAt: Type.Optional(Time),
  receivedAt: Type.Optional(Time),
}

export const TrackEvent = Type.Object({
  ...Common,
  type: Type.Literal('track'),
  event: Type.String({ minLength: 1, maxLength: 1024 }),
  properties: Type.Optional(Obj),
})
export const IdentifyEvent = Type.Object({ ...Common, type: Type.Literal('identify'), traits: Type.Optional(Obj) })
export const PageEvent = Type.Object({
  ...Common,
  type: Type.Literal('page'),
  name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  category: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  properties: Type.Optional(Obj),
})
export const ScreenEvent = Type.Object({
  ...Common,
  type: Type.Literal('screen'),
  name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  properties: Type.Optional(Obj),
})
export const GroupEvent = Type.Object({ ...Common, type: Type.Literal('group'), groupId: Id, traits: Type.Optional(Obj) })
export const AliasEvent = Type.Object({ ...Common, type: Type.Literal('alias'), previousId: Id })

export const EVENT_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const
export type EventType = (typeof EVENT_TYPES)[number]

export const EventSchemas: Record<EventType, TSchema> = {
  track: TrackEvent,
  identify: IdentifyEvent,
  page: PageEvent,
  screen: ScreenEvent,
  group: GroupEvent,
  alias: AliasEvent,
}

export type TrackEvent = Static<typeof TrackEvent>
export type IdentifyEvent = Static<typeof IdentifyEvent>
export type PageEvent = Static<typeof PageEvent>
export type ScreenEvent = Static<typeof ScreenEvent>
export type GroupEvent = Static<typeof GroupEvent>
export type AliasEvent = Static<typeof AliasEvent>

/** An event as a client may send it: any of the six types, before normalization. */
export type IncomingEvent = TrackEvent | IdentifyEvent | PageEvent | ScreenEvent | GroupEvent | AliasEvent

/** What normalization guarantees on every event that leaves intake. */
interface Normalized {
  messageId: string
  userId?: string | null
  anonymousId?: string | null
  context: Record<string, unknown>
  integrations?: Record<string, unknown>
  timestamp: string
  originalTimestamp: string
  sentAt?: string
  receivedAt: string
  [extra: string]: unknown
}

/** A normalized event: messageId, timestamps and context are always present. */
export type FirstpartyEvent = Normalized &
  (
    | { type: 'track'; event: string; properties?: Record<string, unknown> }
    | { type: 'identify'; traits?: Record<string, unknown> }
    | { type: 'page'; name?: string | null; category?: string | null; properties?: Record<string, unknown> }
    | { type: 'screen'; name?: string | null; properties?: Record<string, unknown> }
    | { type: 'group'; groupId: string; traits?: Record<string, unknown> }
    | { type: 'alias'; previousId: string }
  )

export const eventValidators = Object.fromEntries(
  EVENT_TYPES.map((t) => [t, Compile(EventSchemas[t])]),
) as Record<EventType, ReturnType<typeof Compile>>
