/** console: print each event as one JSON line; for development and demos. */
import Type from 'typebox'
import { defineDestination } from '../../src/plugin.js'

export const ConsoleSettings = Type.Object({
  stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')], { default: 'stdout', description: 'Where to write.' }),
  pretty: Type.Boolean({ default: false, description: 'Indent the JSON (several lines per event).' }),
}, { additionalProperties: false })

export default defineDestination({
  name: 'console',
  version: '0.1.0',
  description: 'Write events to stdout or stderr as JSON lines.',
  settings: ConsoleSettings,
  batch: { maxEvents: 100, maxWaitMs: 200 },
  async send(events, ctx) {
    const out = ctx.settings.stream === 'stderr' ? process.stderr : process.stdout
    const text = events.map((e) => JSON.stringify(e, null, ctx.settings.pretty ? 2 : undefined)).join('\n') + '\n'
    if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()))
  },
})
