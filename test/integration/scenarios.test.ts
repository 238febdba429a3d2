import assert from 'node:assert/strict'
import { removeLogs, runScenario } from '../scenarios/scenario-runner.js'
import { SCENARIOS } from '../scenarios/scenarios.js'

// The fast cases of the scenario suite (npm run bench:scenarios runs them all): 3 Mosquittos, PostgreSQL, HAProxy
// from the rendered config, the app as separate processes with the package's defaults, 60 devices behind the
// balancer; every reading a broker acknowledged to a device must be stored.
describe('scenario suite, fast cases: nothing a broker acknowledged to a device is lost', function () {
  this.timeout(300_000)
  for (const name of ['defaults', 'broker-kill-5s', 'scale-in']) {
    const scenario = SCENARIOS.find((s) => s.name === name)!
    it(`${scenario.shape}; ${scenario.faultLabel}`, async () => {
      const result = await runScenario(scenario)
      assert.ok(result.acknowledged > 3000, `devices published: ${result.acknowledged} acknowledged`)
      assert.equal(result.lost, 0, `lost ${result.lost} of ${result.acknowledged} (${result.lostSample.join(', ')}); logs in ${result.directory}`)
      assert.equal(result.repliesMissing, 0, `replies missing: ${result.repliesMissing} of ${result.repliesExpected}`)
      await removeLogs(result)
    })
  }
})
