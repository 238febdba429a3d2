import assert from 'node:assert/strict'
import { healthScore, HealthScoreWindow, scrubSecrets } from '../../src/index.js'

describe('healthScore', () => {
  it('is the success share less slowness and failover penalties, within 0 and 1', () => {
    assert.equal(healthScore({ requests: 0, failures: 0, meanLatencyMs: 0, failovers: 0 }), 1)
    assert.equal(healthScore({ requests: 1000, failures: 10, meanLatencyMs: 50, failovers: 1 }).toFixed(3), '0.930')
    assert.equal(healthScore({ requests: 10, failures: 0, meanLatencyMs: 5000, failovers: 0 }), 0.8, 'slowness costs at most 0.2')
    assert.equal(healthScore({ requests: 10, failures: 0, meanLatencyMs: 0, failovers: 100 }), 0.7, 'failovers cost at most 0.3')
    assert.equal(healthScore({ requests: 10, failures: 10, meanLatencyMs: 900, failovers: 9 }), 0)
  })
})

describe('HealthScoreWindow', () => {
  it('forgets requests and failovers older than its window', () => {
    let now = 0
    let failovers = 3
    const window = new HealthScoreWindow(() => failovers, { windowMs: 60_000, buckets: 6, now: () => now })
    window.record(10, false)
    window.record(30, true)
    failovers = 5
    assert.deepEqual(window.inputs(), { requests: 2, failures: 1, meanLatencyMs: 20, failovers: 2 })
    now = 30_000
    window.record(40, false)
    assert.deepEqual(window.inputs(), { requests: 3, failures: 1, meanLatencyMs: 80 / 3, failovers: 2 })
    now = 65_000
    assert.deepEqual(window.inputs(), { requests: 1, failures: 0, meanLatencyMs: 40, failovers: 0 }, 'the first bucket left the window')
    now = 200_000
    assert.deepEqual(window.inputs(), { requests: 0, failures: 0, meanLatencyMs: 0, failovers: 0 })
  })
})

describe('scrubSecrets', () => {
  it('reduces URLs to host:port and blanks password pairs', () => {
    assert.equal(scrubSecrets('to postgres://app:s3cret@db-1:5432/app?sslmode=require now'), 'to db-1:5432 now')
    assert.equal(scrubSecrets('mqtts://u:p@[::1]:8883/x'), '[::1]:8883')
    assert.equal(scrubSecrets('host=db password=s3cret user=app'), 'host=db password=<redacted>', 'unquoted: to the end of the line')
    assert.equal(scrubSecrets('no secrets here: ECONNREFUSED 127.0.0.1:5432'), 'no secrets here: ECONNREFUSED 127.0.0.1:5432')
    const cases: [string, string][] = [
      ['postgres://app:p@ss@db:5432/app', 'db:5432'],
      ['access_token=abc123&next=1', 'access_token=<redacted>&next=1'],
      ['password=my secret phrase', 'password=<redacted>'],
      ['user:p@ss@db.internal:5432 refused', 'db.internal:5432 refused'],
      ['http://api/x?email=bob@corp.example', '<address>'],
      ['AWS_SECRET_ACCESS_KEY=abc', 'AWS_SECRET_ACCESS_KEY=<redacted>'],
      ['private_key: "-----BEGIN KEY-----"', 'private_key: "<redacted>"'],
      ['authorization: bearer abc.def', 'authorization: bearer <redacted>'],
      ['{"password":"pa\\"ss word","user":"app"}', '{"password":"<redacted>","user":"app"}'],
      ['PGPASSWORD=hunter2', 'PGPASSWORD=<redacted>'],
      ['db_password: hunter2', 'db_password: <redacted>'],
      ['{"password":"hunter2","user":"app"}', '{"password":"<redacted>","user":"app"}'],
      ['connect app:hunter2@db.internal:5432 failed', 'connect db.internal:5432 failed'],
      ['Authorization: Bearer eyJhbGciOi.J9x-y_z', 'Authorization: Bearer <redacted>'],
      ['probe got no answer within 700 ms', 'probe got no answer within 700 ms'],
      ['replica/127.0.0.1:5433 is behind', 'replica/127.0.0.1:5433 is behind'],
    ]
    for (const [input, expected] of cases) assert.equal(scrubSecrets(input), expected, input)
    const long = scrubSecrets(`${'a:'.repeat(20_000)} password=x`)
    assert.ok(long.length <= 2001, 'cut to 2000 characters')
    assert.ok(!long.includes('password=x'))
    const straddling = scrubSecrets(`${'x '.repeat(1995)}user app:hunter2-long-secret@db:5432`)
    assert.ok(!straddling.includes('hunter2'), 'a secret the window falls in is dropped with its token')
    const oneToken = scrubSecrets(`{"error":"${'e'.repeat(2500)}"}`)
    assert.ok(oneToken.startsWith('{"error":"eee') && oneToken.length === 2001, 'a long single-token error is kept, cut')
  })

  it('never shows a password holding whitespace, one before a fullwidth "＠", a pass= value or one after an IPv6 user', () => {
    const secret = 'S3cr3tPW'
    const cases: [string, string][] = [
      [`connect mqtt://u:${secret} @h failed`, 'connect h failed'],
      [`connect u:pa ${secret}@h failed`, 'connect h failed'],
      [`connect mqtt://u:pa ${secret}@h:1883 failed`, 'connect h:1883 failed'],
      [`connect mqtt://u:${secret}\t@h failed`, 'connect h failed'],
      [`connect mqtt://u:${secret}\n@h failed`, 'connect h failed'],
      [`connect mqtt://u:${secret}＠h failed`, 'connect h failed'],
      [`connect u:${secret}＠h failed`, 'connect h failed'],
      [`pass=${secret}`, 'pass=<redacted>'],
      [`DB_PASS: ${secret}`, 'DB_PASS: <redacted>'],
      [`connect [::1]:${secret}@h failed`, 'connect h failed'],
    ]
    for (const [input, expected] of cases) assert.equal(scrubSecrets(input), expected, JSON.stringify(input))
    // Ordinary text that looks a little like these stays as it is.
    for (const text of [
      'at 12:30 sent to bob@corp.example', 'connect h:1883 refused by bob@corp.example', 'error: mail bob@corp.example',
      'tests passed: 5', 'bypass=1', 'compass: north', 'connect ECONNREFUSED [::1]:1883',
    ]) {
      assert.equal(scrubSecrets(text), text)
    }
  })

  it('never shows the user info of a URL whose password has an unescaped "/", "?" or "#"', () => {
    // Written with user name "alice" and a password holding "hunter"; where the URL parser would end the user
    // info cannot be told from the text, so such a URL is reduced to <address>.
    const cases: [string, string][] = [
      ['connect mqtt://alice:12/hunter@b:1883 failed', 'connect <address> failed'],
      ['connect mqtt://alice:12?hunter@b:1883 failed', 'connect <address> failed'],
      ['connect mqtt://alice:12#hunter@b:1883 failed', 'connect <address> failed'],
      ['connect ws://alice:12\\hunter@b/mqtt failed', 'connect b failed'],
      ['connect postgres://alice:5432/hunter@db:5432/app failed', 'connect <address> failed'],
      ['connect mqtt://alice%3A12%2Fhunter%40b:1883 failed', 'connect <address> failed'],
      ['connect alice:12/hunter@b:1883 failed', 'connect b:1883 failed'],
      ['connect alice:12?hunter#x@b:1883 failed', 'connect b:1883 failed'],
    ]
    for (const [input, expected] of cases) {
      const scrubbed = scrubSecrets(input)
      assert.equal(scrubbed, expected, input)
      for (const secret of ['alice', 'hunter', '12']) assert.ok(!scrubbed.includes(secret), `${input} became ${scrubbed}`)
    }
    assert.equal(scrubSecrets('postgres://app:p@ss@db:5432/app'), 'db:5432', "an '@' in the password before the path is still read")
  })
})
