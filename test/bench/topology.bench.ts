// node dist/test/bench/topology.bench.js: time until 3 Mosquitto brokers, a
// PostgreSQL primary and 2 streaming replicas all accept connections.
import { startTopology } from '../../src/testing/index.js'

const started = performance.now()
const topology = await startTopology({ brokers: 3, replicas: 2 })
const readyMs = Math.round(performance.now() - started)
try {
  console.log(`topology ready: 3 brokers, primary and 2 replicas accepting connections after ${readyMs} ms`)
  console.log(JSON.stringify({ topology_ready_ms: readyMs }))
} finally {
  await topology.stop()
}
