/** The destinations every router knows by name. */
import type { DestinationDefinition } from '../src/plugin.js'
import consoleDestination from './console/index.js'
import fileDestination from './file/index.js'
import webhookDestination from './webhook/index.js'
import ga4Destination from './ga4/index.js'

export const builtinDestinations: ReadonlyArray<DestinationDefinition> = [
  webhookDestination as unknown as DestinationDefinition,
  fileDestination as unknown as DestinationDefinition,
  consoleDestination as unknown as DestinationDefinition,
  ga4Destination as unknown as DestinationDefinition,
]
