/**
 * `firstparty explain` in its own process: the table, --json, deny rules from the
 * command line and from privacy.deny, and the exit codes CI gates on.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../bin/firstparty.js', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'explain', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FIRSTPARTY_CONFIG: '' } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

const dir = mkdtempSync(join(tmpdir(), 'fp-explain-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, text: string) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

const mapping = file('tight.fp', 'on track {\n  id = event.messageId\n  em = hashEmail(event.traits.email)\n}\ndefault { drop }\n')
const config = file('firstparty.config.yaml', `
consent: { missing: deny }
destinations:
  - name: warehouse
    type: webhook
    settings: { url: 'http://127.0.0.1:9/in' }
  - name: ads
    type: webhook
    settings: { url: 'http://127.0.0.1:9/ads' }
    consent: { categories: [advertising] }
    mappingFile: ./tight.fp
privacy:
  deny: ['email:raw -> ads']
`)
t.ok(mapping)

t.test('a passing config: table on stdout, exit 0', async (t) => {
  const r = await run([config])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /destination\s+consent\s+email\s+phone\s+ip\s+name\s+address\s+user_id\s+free_text/)
  t.match(r.stdout, /\nads \(webhook\)\s+advertising, !gpc\s+hashed\s+never\s+never/)
  t.match(r.stdout, /\nwarehouse \(webhook\)\s+-\s+raw/)
  t.match(r.stdout, /deny rules: 1, violated: 0/)
})

t.test('a forbidden flow from --deny: exit 1, named on stderr', async (t) => {
  const r = await run([config, '--deny', 'email:raw -> *'])
  t.equal(r.code, 1)
  t.match(r.stdout, /FORBIDDEN email:raw -> warehouse/)
  t.match(r.stderr, /forbidden flows? possible \("email:raw -> \*"\)/)
  const hashed = await run([config, '--deny=email:hashed -> ads'])
  t.equal(hashed.code, 1, 'hashed is forbidden too when the rule says so')
})

t.test('a forbidden flow from privacy.deny: exit 1', async (t) => {
  const bad = file('bad.yaml', `destinations:\n  - name: ads\n    type: webhook\n    settings: { url: 'http://127.0.0.1:9' }\nprivacy:\n  deny: ['*:raw -> ads']\n`)
  const r = await run([bad, '--json'])
  t.equal(r.code, 1)
  const report = JSON.parse(r.stdout) as { version: number; deny: { violations: Array<{ origin: string; class: string }> } }
  t.equal(report.version, 1)
  t.same([...new Set(report.deny.violations.map((v) => v.class))].sort(), ['address', 'email', 'free_text', 'ip', 'name', 'phone', 'user_id'])
  t.equal(report.deny.violations[0]!.origin, '/privacy/deny/0')
})

t.test('--json: the documented shape', async (t) => {
  const r = await run([config, '--json'])
  t.equal(r.code, 0)
  const report = JSON.parse(r.stdout) as { classes: string[]; destinations: Array<{ name: string; shape: string; consent: { categories: string[] }; classes: Record<string, { verdict: string; treatments: string[]; flows: unknown[] }> }> }
  t.same(report.classes, ['email', 'phone', 'ip', 'name', 'address', 'user_id', 'free_text'])
  const ads = report.destinations.find((d) => d.name === 'ads')!
  t.match(ads.shape, /tight\.fp$/)
  t.same(ads.consent.categories, ['advertising'])
  t.same(ads.classes.email!.treatments, ['hashed'])
  t.equal(ads.classes.ip!.verdict, 'never')
})

t.test('usage and config errors: exit 2', async (t) => {
  const badRule = await run([config, '--deny', 'emial:raw -> *'])
  t.equal(badRule.code, 2)
  t.match(badRule.stderr, /--deny #1: character 1: unknown class "emial"/)
  const badConfigRule = await run([file('badrule.yaml', "privacy:\n  deny: ['email:raw']\n")])
  t.equal(badConfigRule.code, 2)
  t.match(badConfigRule.stderr, /\/privacy\/deny\/0: character 10: expected "->"/)
  t.equal((await run([join(dir, 'missing.yaml')])).code, 2)
  t.equal((await run([config, '--nope'])).code, 2)
  t.equal((await run([config, '--deny'])).code, 2)
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: firstparty explain/)
})
