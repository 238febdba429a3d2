import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync, type MqttClient } from 'mqtt'
import { chromium, type Browser, type Page } from 'playwright-core'
import { PNG } from 'pngjs'
import { Application, healthGate, LoadBalancingModule, Router, silentLogger, type StatusReport } from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { ensureDebianPackages } from '../support/system-packages.js'

const CHROMIUM = '/usr/bin/chromium'
// The machine has no internet: nothing in the background may try to reach it.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
]
const BROKER_PASSWORD = 'brokerS3cret'
const DB_PASSWORD = 'dbS3cret'
// What a check's error may say: shown as text, never run.
const HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

describe('the status page in headless Chromium, on a real app', function () {
  this.timeout(120_000)
  let topology: Topology
  let app: Application | undefined
  let browser: Browser | undefined
  let device: MqttClient | undefined
  let shots: string

  before(async function () {
    this.timeout(600_000)
    ensureDebianPackages({ [CHROMIUM]: 'chromium' })
    topology = await startTopology({ brokers: 2, replicas: 1 })
    shots = await mkdtemp(join(tmpdir(), 'status-page-'))
  })
  after(async () => {
    await browser?.close()
    await device?.endAsync()
    await app?.stop()
    await topology?.stop()
    if (process.env.KEEP_STATUS_SCREENSHOTS !== '1') await rm(shots, { recursive: true, force: true })
  })

  it('shows brokers, primary, replicas, gates and regions, and turns a killed broker and a stopped replica red without reloading', async () => {
    const [brokerA, brokerB] = topology.brokers
    const brokerUrl = new URL(brokerB!.url)
    brokerUrl.username = 'svc'
    brokerUrl.password = BROKER_PASSWORD
    const replicaUrl = new URL(topology.replicas[0]!.url)
    replicaUrl.password = DB_PASSWORD
    const module = LoadBalancingModule.forRoot({
      mqtt: {
        brokers: [{ url: brokerA!.url, id: 'broker-a', region: 'eu' }, { url: brokerUrl.toString(), id: 'broker-b', region: 'us' }],
        mode: 'all', clientId: 'status-page-test',
      },
      database: { primary: topology.primary!.url, replicas: [{ url: replicaUrl.toString(), id: 'replica-1', region: 'eu' }], migrate: true },
      health: {
        http: { host: '127.0.0.1', port: 0 },
        shutdown: false,
        statusPage: { refreshMs: 500 },
        checks: [{ name: 'billing', critical: false, intervalMs: 500, check: () => { throw new Error(HOSTILE) } }],
      },
      logger: silentLogger,
    })
    const router = new Router()
    router.on('devices/{id}/ping', () => undefined, { qos: 1, middleware: [healthGate('primary')] })
    app = Application.create({ router, modules: [module], logger: silentLogger })
    await app.start()
    const url = `${module.parts.health!.server!.url}/status`

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
    const problems: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content.Security.Policy/i.test(message.text())) problems.push(message.text())
    })
    page.on('pageerror', (error) => problems.push(error.message))
    const requests: string[] = []
    page.on('request', (request) => requests.push(request.url()))
    let loads = 0
    page.on('load', () => loads++)
    await page.goto(url)

    await stateIs(page, 'brokers', 'broker-a', 'up')
    await stateIs(page, 'brokers', 'broker-b', 'up')
    await stateIs(page, 'primary', await primaryId(url), 'up')
    await stateIs(page, 'replicas', 'replica-1', 'up')
    await stateIs(page, 'gates', 'primary', 'up')
    await stateIs(page, 'checks', 'billing', 'down')
    assert.equal(await cellText(page, 'regions', 'eu', 1), '1 / 1', 'eu: broker-a')
    assert.equal(await cellText(page, 'regions', 'eu', 2), '1 / 1', 'eu: replica-1')
    assert.equal(await cellText(page, 'regions', 'us', 1), '1 / 1', 'us: broker-b')

    // A message the app handles shows in the counters at the next refresh.
    device = await connectAsync(brokerA!.url, { clientId: 'status-page-device' })
    await device.publishAsync('devices/d1/ping', '{}', { qos: 1 })
    // Waited for by selector: a predicate polled as a string would be refused by the page's CSP (no 'unsafe-eval').
    await page.locator('#counters [data-counter="messages handled"][data-value="1"]').waitFor({ timeout: 10_000 })

    // The error text arrived as text: no element was made from it and nothing in it ran.
    const billing = page.locator('#checks tr[data-id="billing"] td.error')
    assert.equal(await billing.innerText(), HOSTILE)
    assert.equal(await page.evaluate(() => typeof (globalThis as { __xss?: unknown }).__xss), 'undefined')
    assert.equal(await page.locator('main img, main script').count(), 0)

    await brokerB!.kill()
    await topology.replicas[0]!.stop()
    await stateIs(page, 'brokers', 'broker-b', 'down', 30_000)
    await stateIs(page, 'replicas', 'replica-1', 'down', 30_000)
    await stateIs(page, 'brokers', 'broker-a', 'up')
    assert.equal(await cellText(page, 'regions', 'us', 1), '0 / 1')
    assert.equal(loads, 1, 'the page updated itself: it was loaded once')

    const text = await page.locator('body').innerText()
    for (const secret of [BROKER_PASSWORD, DB_PASSWORD, 'postgres://', 'mqtt://']) assert.ok(!text.includes(secret), `the page shows ${secret}`)
    const json = await (await fetch(`${url}.json`)).text()
    for (const secret of [BROKER_PASSWORD, DB_PASSWORD]) assert.ok(!json.includes(secret), `status.json holds ${secret}`)
    assert.deepEqual([...new Set(requests.map((r) => new URL(r).pathname))].sort(), ['/status', '/status.json'], 'nothing loaded from elsewhere')
    assert.deepEqual(problems, [], 'no script error and no CSP violation')

    // The screenshot: what an operator sees, with the state cells in their colours.
    const file = join(shots, 'status.png')
    await page.screenshot({ path: file, fullPage: true })
    const png = PNG.sync.read(await readFile(file))
    assert.equal(png.width, 1280)
    assert.ok(png.height >= 600, `a page of every section, not ${png.height} px`)
    const upCell = await pixelOf(page, png, '#brokers tr[data-id="broker-a"] td.state')
    const downCell = await pixelOf(page, png, '#brokers tr[data-id="broker-b"] td.state')
    const replicaCell = await pixelOf(page, png, '#replicas tr[data-id="replica-1"] td.state')
    assert.ok(upCell.g > 100 && upCell.g > upCell.r + 60 && upCell.g > upCell.b + 30, `the up cell is green, not ${JSON.stringify(upCell)}`)
    for (const cell of [downCell, replicaCell]) assert.ok(cell.r > 150 && cell.r > cell.g + 100, `a down cell is red, not ${JSON.stringify(cell)}`)
    const white = pixel(png, 2, png.height - 2)
    assert.ok(white.r > 230 && white.g > 230, 'the page background is light')
    const distinct = new Set<number>()
    for (let i = 0; i < png.data.length; i += 4 * 97) distinct.add((png.data[i]! << 16) | (png.data[i + 1]! << 8) | png.data[i + 2]!)
    assert.ok(distinct.size > 20, `the screenshot shows a rendered page, not a blank (${distinct.size} colours)`)

    // The app goes away: the page says so and keeps what it showed last.
    const stopping = app
    app = undefined
    await stopping.stop()
    await page.locator('#stale.shown').waitFor({ timeout: 10_000 })
    assert.match(await page.locator('#stale').innerText(), /not answering/)
    assert.equal(await page.locator('#brokers tr[data-id="broker-a"] td.state').getAttribute('data-state'), 'up', 'the last figures stay')
  })
})

async function primaryId(url: string): Promise<string> {
  const report = (await (await fetch(`${url}.json`)).json()) as StatusReport
  return report.database!.primary.id!
}

/** Waits until the page shows the row's state (it refreshes itself; the page is never reloaded). */
async function stateIs(page: Page, section: string, id: string, state: string, timeout = 15_000): Promise<void> {
  await page.locator(`#${section} tr[data-id="${id}"] td.state[data-state="${state}"]`).waitFor({ timeout })
}

async function cellText(page: Page, section: string, id: string, column: number): Promise<string> {
  return page.locator(`#${section} tr[data-id="${id}"] td`).nth(column).innerText()
}

/** The colour near the top-left corner of an element, inside its padding, in the screenshot. */
async function pixelOf(page: Page, png: PNG, selector: string): Promise<{ r: number; g: number; b: number }> {
  const box = await page.locator(selector).boundingBox()
  assert.ok(box, `${selector} is on screen`)
  return pixel(png, Math.round(box.x + 3), Math.round(box.y + 2))
}

function pixel(png: PNG, x: number, y: number): { r: number; g: number; b: number } {
  const i = (png.width * y + x) * 4
  return { r: png.data[i]!, g: png.data[i + 1]!, b: png.data[i + 2]! }
}
