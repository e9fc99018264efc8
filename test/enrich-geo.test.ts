/**
 * Geo from a MaxMind DB: a City-like database written at test time by
 * test/helpers/mmdb.ts (three networks, IPv4 and IPv6) is read by the real `maxmind`
 * package, and the enricher fills Segment's context.location (plus context.timezone)
 * from the full IP before masking it. A missing, corrupt, compressed or wrongly typed
 * database is a ConfigError naming /enrich/geo/database — at once when the file can be
 * seen to be wrong, else from `ready`; a relative path in a config file is relative to it.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import maxmind from 'maxmind'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config.js'
import { createEnricher } from '../src/enrich/index.js'
import { ConfigError } from '../src/errors.js'
import type { FirstpartyEvent } from '../src/normalize/schema.js'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import { cityRecord, u32, writeMmdb } from './helpers/mmdb.js'

const dir = mkdtempSync(join(tmpdir(), 'fp-geo-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const BERLIN = { city: 'Berlin', country: 'Germany', countryCode: 'DE', region: 'Land Berlin', regionCode: 'BE', latitude: 52.5196, longitude: 13.4069, timeZone: 'Europe/Berlin' }
const PARIS = { city: 'Paris', country: 'France', countryCode: 'FR', region: 'Île-de-France', regionCode: 'IDF', latitude: 48.8566, longitude: 2.3522, timeZone: 'Europe/Paris' }

const cityDb = join(dir, 'City.mmdb')
writeFileSync(cityDb, writeMmdb({
  networks: [
    { network: '203.0.113.0/24', data: cityRecord(BERLIN) },
    { network: '2001:db8::/32', data: cityRecord({ ...PARIS, geonameId: 2_988_507 }) },
    // Upper half of a /24 only: its addresses masked to the /24 fall outside.
    { network: '198.51.100.128/25', data: cityRecord({ ...BERLIN, city: 'Hamburg', regionCode: 'HH', region: 'Hamburg' }) },
  ],
}))

function event(context: Record<string, unknown>): FirstpartyEvent {
  return { type: 'track', event: 'X', anonymousId: 'a', messageId: 'm', context } as unknown as FirstpartyEvent
}

function configError(t: Test, fn: () => unknown): ConfigError {
  const err = t.throws(fn) as ConfigError
  t.ok(err instanceof ConfigError, 'a ConfigError')
  return err
}

t.test('the test database is a real MaxMind DB: the maxmind package reads it', async (t) => {
  const reader = await maxmind.open(cityDb)
  t.equal(reader.metadata.databaseType, 'GeoLite2-City')
  t.equal(reader.metadata.ipVersion, 6)
  t.equal(reader.metadata.recordSize, 24)
  const berlin = reader.get('203.0.113.200') as Record<string, any>
  t.equal(berlin.city.names.en, 'Berlin')
  t.equal(berlin.location.latitude, 52.5196)
  t.equal(berlin.subdivisions[0].iso_code, 'BE')
  t.equal((reader.get('2001:db8:1234::1') as Record<string, any>).city.geoname_id, 2_988_507)
  t.equal(reader.get('198.51.100.1'), null, 'outside the networks')
  t.equal((reader.get('198.51.100.200') as Record<string, any>).city.names.en, 'Hamburg')
  t.equal(reader.get('2001:db9::1'), null)
})

t.test('the enricher fills context.location and context.timezone, IPv4 and IPv6', async (t) => {
  const enricher = createEnricher({ geo: { database: cityDb } })
  await enricher.ready
  const v4 = event({ ip: '203.0.113.7' })
  enricher.enrich(v4)
  t.same(v4.context.location, { city: 'Berlin', country: 'Germany', countryCode: 'DE', region: 'BE', latitude: 52.5196, longitude: 13.4069 })
  t.equal(v4.context.timezone, 'Europe/Berlin')
  t.equal(v4.context.ip, '203.0.113.7', "ip: 'keep' by default")

  const v6 = event({ ip: '2001:db8:ffff::42', timezone: 'America/New_York' })
  enricher.enrich(v6)
  t.equal((v6.context.location as Record<string, unknown>).city, 'Paris')
  t.equal(v6.context.timezone, 'America/New_York', "the browser's time zone is kept")

  const mapped = event({ ip: '::ffff:203.0.113.9' })
  enricher.enrich(mapped)
  t.equal((mapped.context.location as Record<string, unknown>).city, 'Berlin', 'IPv4-mapped IPv6 is looked up as IPv4')

  const own = event({ ip: '203.0.113.7', location: { city: 'Client City' } })
  enricher.enrich(own)
  t.same(own.context.location, { city: 'Client City' }, "the client's location is kept")

  for (const ip of ['198.51.100.1', 'not-an-ip', '', undefined]) {
    const ev = event(ip === undefined ? {} : { ip })
    enricher.enrich(ev)
    t.notOk('location' in ev.context, `no location for ${JSON.stringify(ip)}`)
  }
  await enricher.close()
  const after = event({ ip: '203.0.113.7' })
  t.equal(enricher.enrich(after), 'keep')
  t.notOk('location' in after.context, 'closed: no more lookups')
})

t.test('the lookup sees the full IP; masking and dropping come after', async (t) => {
  const mask = createEnricher({ geo: { database: cityDb }, ip: 'mask' })
  const drop = createEnricher({ geo: { database: cityDb }, ip: 'drop' })
  await Promise.all([mask.ready, drop.ready])
  const a = event({ ip: '198.51.100.200' })
  mask.enrich(a)
  t.equal(a.context.ip, '198.51.100.0')
  t.equal((a.context.location as Record<string, unknown>).city, 'Hamburg', 'found by the full address; the masked one is in no network')
  const b = event({ ip: '2001:db8:1:2::3' })
  drop.enrich(b)
  t.notOk('ip' in b.context)
  t.equal((b.context.location as Record<string, unknown>).city, 'Paris')
})

t.test('place names in another language, English when it is missing', async (t) => {
  const db = join(dir, 'lang.mmdb')
  writeFileSync(db, writeMmdb({
    languages: ['en', 'de'],
    networks: [{ network: '192.0.2.0/24', data: { city: { names: { en: 'Munich', de: 'München' } }, country: { iso_code: 'DE', names: { en: 'Germany' } }, location: { latitude: 48.137, longitude: 11.575 }, subdivisions: [{ names: { en: 'Bavaria' } }], extra: u32(1) } }],
  }))
  const enricher = createEnricher({ geo: { database: db, language: 'de' } })
  await enricher.ready
  const ev = event({ ip: '192.0.2.1' })
  enricher.enrich(ev)
  t.same(ev.context.location, { city: 'München', country: 'Germany', countryCode: 'DE', region: 'Bavaria', latitude: 48.137, longitude: 11.575 })
  t.notOk('timezone' in ev.context)
})

t.test('through the router: events get a location before delivery; router.ready() waits for the database', async (t) => {
  const capture = captureDestination('capture')
  const router = createRouter({ logLevel: 'silent', enrich: { geo: { database: cityDb }, ip: 'mask' }, destinations: [{ name: 'capture', type: capture.plugin, delivery: { batch: { maxWaitMs: 0 } } }] })
  t.teardown(() => router.close())
  await router.ready()
  await router.track({ event: 'X', anonymousId: 'a', context: { ip: '203.0.113.50' } })
  const [ev] = await capture.waitFor(1)
  t.equal((ev!.context.location as Record<string, unknown>).country, 'Germany')
  t.equal(ev!.context.ip, '203.0.113.0')
})

t.test('a database that cannot be used is a ConfigError naming /enrich/geo/database', async (t) => {
  const missing = configError(t, () => createEnricher({ geo: { database: join(dir, 'nope.mmdb') } }))
  t.equal(missing.code, 'CONFIG_GEO_DATABASE')
  t.equal(missing.path, '/enrich/geo/database')
  t.match(missing.message, /ENOENT/)

  const random = join(dir, 'random.mmdb')
  writeFileSync(random, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)))
  t.match(configError(t, () => createEnricher({ geo: { database: random } })).message, /is not a MaxMind DB/)

  const gz = join(dir, 'GeoLite2-City.mmdb.gz')
  writeFileSync(gz, gzipSync(Buffer.from('not really')))
  t.match(configError(t, () => createEnricher({ geo: { database: gz } })).message, /gzip-compressed/)

  t.match(configError(t, () => createEnricher({ geo: { database: dir } })).message, /is not a file/)

  // The marker is there but what follows is garbage: found when maxmind opens it.
  const corrupt = join(dir, 'corrupt.mmdb')
  writeFileSync(corrupt, Buffer.concat([Buffer.alloc(64, 0xff), Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), Buffer.from([0xe9, 0x01, 0x02])]))
  const enricher = createEnricher({ geo: { database: corrupt } })
  const err = (await enricher.ready.then(() => undefined, (e: unknown) => e)) as ConfigError
  t.ok(err instanceof ConfigError, 'ready rejects')
  t.equal(err.code, 'CONFIG_GEO_DATABASE')
  t.equal(err.path, '/enrich/geo/database')
  const ev = event({ ip: '203.0.113.7' })
  t.equal(enricher.enrich(ev), 'keep', 'enrich still works, without geo')
  t.notOk('location' in ev.context)

  // An ASN database is a MaxMind DB, but has no places.
  const asn = join(dir, 'ASN.mmdb')
  writeFileSync(asn, writeMmdb({ databaseType: 'GeoLite2-ASN', networks: [{ network: '203.0.113.0/24', data: { autonomous_system_number: u32(64_496) } }] }))
  const asnErr = (await createEnricher({ geo: { database: asn } }).ready.then(() => undefined, (e: unknown) => e)) as ConfigError
  t.equal(asnErr.code, 'CONFIG_GEO_DATABASE')
  t.match(asnErr.message, /GeoLite2-ASN/)

  // The router: the missing file stops createRouter; the corrupt one rejects router.ready().
  const routerErr = configError(t, () => createRouter({ logLevel: 'silent', enrich: { geo: { database: join(dir, 'nope.mmdb') } } }))
  t.equal(routerErr.path, '/enrich/geo/database')
  const router = createRouter({ logLevel: 'silent', enrich: { geo: { database: corrupt } } })
  t.teardown(() => router.close())
  const readyErr = (await router.ready().then(() => undefined, (e: unknown) => e)) as ConfigError
  t.equal(readyErr.code, 'CONFIG_GEO_DATABASE')
})

t.test('in a config file, a relative database path is relative to the file', async (t) => {
  const sub = join(dir, 'conf')
  mkdirSync(join(sub, 'geo'), { recursive: true })
  copyFileSync(cityDb, join(sub, 'geo', 'City.mmdb'))
  const file = join(sub, 'firstparty.config.yaml')
  writeFileSync(file, 'enrich:\n  ip: mask\n  geo:\n    database: geo/City.mmdb\n')
  const config = await loadConfig(file, {})
  t.equal(config.enrich?.geo?.database, join(sub, 'geo', 'City.mmdb'))
  const router = createRouter({ ...config, logLevel: 'silent' })
  t.teardown(() => router.close())
  await router.ready()
  const result = router.evaluate({ type: 'track', event: 'X', anonymousId: 'a', context: { ip: '203.0.113.1' } })
  t.equal((result.event.context.location as Record<string, unknown>).city, 'Berlin')
})
