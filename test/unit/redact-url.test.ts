import assert from 'node:assert/strict'
import { redactUrl } from '../../src/index.js'

describe('redactUrl', () => {
  it('keeps scheme, host, port and path, and drops user name, password, query and fragment', () => {
    assert.equal(redactUrl('mqtts://dev:s3cret@broker:8883/?x=1'), 'mqtts://broker:8883')
    assert.equal(redactUrl('wss://dev:s3cret@broker/mqtt#frag'), 'wss://broker/mqtt')
    assert.equal(redactUrl('mqtt://alice:12%2Fhunter@b:1883'), 'mqtt://b:1883', 'a percent-encoded "/" keeps the password in the user info')
    assert.equal(redactUrl('postgres://app:p%40ss@db-1:5432/app?sslmode=require'), 'postgres://db-1:5432/app')
    assert.equal(redactUrl('mqtt://[::1]:1883'), 'mqtt://[::1]:1883')
  })

  // Each URL below was written with user name "alice" and a password holding "hunter"; a character the
  // password should have had percent-encoded makes the URL parser read part of them as host, port, path,
  // query or fragment.
  const shapes: [string, string][] = [
    ['an unescaped "/" in the password (the "@" lands in the path)', 'mqtt://alice:12/hunter@b:1883'],
    ['an unescaped "/" and nothing before it but digits', 'postgres://alice:5432/hunter@db:5432/app'],
    ['an unescaped "?" in the password (the "@" lands in the query)', 'mqtt://alice:12?hunter@b:1883'],
    ['an unescaped "#" in the password (the "@" lands in the fragment)', 'mqtt://alice:12#hunter@b:1883'],
    ['a "/" in the user name, no password', 'mqtt://alice/hunter@b:1883'],
    ['a backslash, which special schemes read as "/"', 'ws://alice:12\\hunter@b/mqtt'],
    ['the whole user info percent-encoded, "@" included (it becomes the host)', 'mqtt://alice%3A12%2Fhunter%40b:1883'],
    ['no "//" after the scheme (it all becomes the path)', 'mqtt:alice:hunter@b:1883'],
    ['an out-of-range port after the user info is misread', 'mqtt://alice:hunter@b:99999'],
    ['no URL at all', 'alice:hunter@b:1883'],
  ]
  for (const [name, url] of shapes) {
    it(`never shows the user info of a URL with ${name}`, () => {
      const redacted = redactUrl(url)
      for (const secret of ['alice', 'hunter', '12']) assert.ok(!redacted.includes(secret), `${url} became ${redacted}`)
    })
  }

  it('redacts a URL whole when its user info cannot be told apart, keeping the scheme', () => {
    assert.equal(redactUrl('mqtt://alice:12/hunter@b:1883'), 'mqtt://<redacted>')
    assert.equal(redactUrl('mqtt://b:1883/topic@x'), 'mqtt://<redacted>', "an '@' in the path could end a password with a '/' in it")
    assert.equal(redactUrl('not a url'), '<unparseable url>')
  })
})
