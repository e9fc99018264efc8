/** The destinations every router knows by name. */
import type { DestinationDefinition } from '../src/plugin.js'
import amplitudeDestination from './amplitude/index.js'
import consoleDestination from './console/index.js'
import fileDestination from './file/index.js'
import ga4Destination from './ga4/index.js'
import metaCapiDestination from './meta-capi/index.js'
import mixpanelDestination from './mixpanel/index.js'
import postgresDestination from './postgres/index.js'
import segmentDestination from './segment/index.js'
import webhookDestination from './webhook/index.js'

export const builtinDestinations: ReadonlyArray<DestinationDefinition> = [
  webhookDestination,
  fileDestination,
  consoleDestination,
  ga4Destination,
  metaCapiDestination,
  mixpanelDestination,
  amplitudeDestination,
  segmentDestination,
  postgresDestination,
].map((d) => d as unknown as DestinationDefinition)
