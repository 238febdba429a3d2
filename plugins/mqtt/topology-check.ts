import { randomBytes } from 'node:crypto'
import { connect, type MqttClient } from 'mqtt'
import { awaitConnack } from '../../src/routemq/transport-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { clientOptions } from './mqtt-client-options.js'

/** Options of `checkBrokerTopology`. */
export interface TopologyCheckOptions {
  /** Client ids are `<clientIdPrefix>-canary-<n>`. */
  readonly clientIdPrefix: string
  /** Canaries go to `<topic>/<nonce>/...`. */
  readonly topic: string
  readonly protocolVersion: 4 | 5
  readonly connectTimeoutMs: number
  /** How long a canary may take to be seen on the other brokers. */
  readonly timeoutMs: number
}

/**
 * - `'cluster'`: every broker that answered sees what is published on every other one;
 * - `'independent'`: none sees another's messages;
 * - `'partial'`: some do and some do not (bridges one way, two clusters);
 * - `'unknown'`: fewer than two brokers answered, or a canary was refused.
 */
export type TopologyVerdict = 'cluster' | 'independent' | 'partial' | 'unknown'

/** What the canaries found. */
export interface TopologyReport {
  readonly verdict: TopologyVerdict
  /** Ids of the brokers that accepted the canary clients. */
  readonly reachable: readonly string[]
  /** For each reachable broker, the ids of the others whose canaries it saw. */
  readonly sees: ReadonlyMap<string, ReadonlySet<string>>
  /** Brokers that delivered a message through a `$share/...` subscription. */
  readonly sharedSubscriptions: ReadonlySet<string>
  /** Why the verdict is `'unknown'`, in words. */
  readonly reason: string | undefined
}

const REPEAT_MS = 100
const SUBSCRIBE_TIMEOUT_MS = 10_000

/**
 * Finds out whether brokers share messages: a clean client on each broker
 * subscribes to a canary topic and publishes a canary (QoS 1, repeated every
 * 100 ms, since a cluster may take a moment to learn of a new subscription)
 * until every broker has seen every other one's, or the timeout. It also
 * checks that each broker delivers through a `$share/` subscription.
 * Unreachable brokers are left out. Independent brokers take the whole
 * timeout to tell apart; a cluster answers in a few round trips.
 *
 * @example
 * const report = await checkBrokerTopology(endpoints, { clientIdPrefix: 'app-1', topic: 'routemq/control/app/canary', protocolVersion: 5, connectTimeoutMs: 2000, timeoutMs: 1500 })
 * if (report.verdict === 'independent') useAllMode()
 */
export async function checkBrokerTopology(endpoints: readonly BrokerEndpoint[], options: TopologyCheckOptions): Promise<TopologyReport> {
  const nonce = randomBytes(6).toString('hex')
  const base = `${options.topic}/${nonce}`
  const opened = await Promise.all(endpoints.map(async (endpoint, index) => {
    const client = connect(endpoint.url, {
      ...clientOptions(endpoint, `${options.clientIdPrefix}-canary-${index + 1}`, options.protocolVersion, options.connectTimeoutMs),
      clean: true,
      keepalive: 0,
    })
    client.on('error', noop)
    try {
      await awaitConnack(client, { timeoutMs: options.connectTimeoutMs })
      return { endpoint, index, client }
    } catch {
      client.end(true)
      return undefined
    }
  }))
  const canaries = opened.filter((c): c is { endpoint: BrokerEndpoint; index: number; client: MqttClient } => c !== undefined)
  const sees = new Map<string, Set<string>>(canaries.map((c) => [c.endpoint.id, new Set<string>()]))
  const sharedSubscriptions = new Set<string>()
  let refused: string | undefined
  try {
    if (canaries.length === 0) return report('unknown', canaries, sees, sharedSubscriptions, 'no broker answered')
    let complete: () => void = noop
    const done = new Promise<void>((resolve) => (complete = resolve))
    const check = (): void => {
      const allSeen = canaries.every((c) => sees.get(c.endpoint.id)!.size === canaries.length - 1)
      if (allSeen && sharedSubscriptions.size === canaries.length) complete()
    }
    // A SUBACK may take long on a cluster (a durable consumer per subscription); a broker that never answers one
    // is left out, like one that did not answer the CONNECT.
    const subscribed = await Promise.all(canaries.map(async ({ endpoint, index, client }) => {
      client.on('message', (topic, payload) => {
        if (topic === `${base}/s/${index}`) sharedSubscriptions.add(endpoint.id)
        else if (topic.startsWith(`${base}/c/`)) {
          const from = payload.toString()
          if (from !== endpoint.id) sees.get(endpoint.id)!.add(from)
        }
        check()
      })
      const subscribing = (async () => {
        await client.subscribeAsync(`${base}/c/+`, { qos: 1 })
        // A broker without shared subscriptions refuses the filter (or takes it as a topic no one publishes to).
        await client.subscribeAsync(`$share/canary${nonce}/${base}/s/${index}`, { qos: 1 }).catch(noop)
        return true
      })()
      return raceTimeout(subscribing.catch(() => false), SUBSCRIBE_TIMEOUT_MS, () => false)
    }))
    const answering = canaries.filter((_, i) => subscribed[i])
    canaries.splice(0, canaries.length, ...answering)
    for (const id of [...sees.keys()]) if (!canaries.some((c) => c.endpoint.id === id)) sees.delete(id)
    if (canaries.length === 0) return report('unknown', canaries, sees, sharedSubscriptions, 'no broker answered a SUBSCRIBE')
    const publishAll = (): void => {
      for (const { endpoint, index, client } of canaries) {
        client.publish(`${base}/c/${index}`, endpoint.id, { qos: 1 }, (error) => {
          if (error && client.connected) refused ??= `${endpoint.id} refused a canary on ${base}/c/${index}: ${error.message}`
        })
        client.publish(`${base}/s/${index}`, endpoint.id, { qos: 1 }, noop)
      }
    }
    publishAll()
    const repeat = setInterval(publishAll, REPEAT_MS)
    await raceTimeout(done, options.timeoutMs, noop)
    clearInterval(repeat)
    if (refused) return report('unknown', canaries, sees, sharedSubscriptions, refused)
    if (canaries.length < 2) return report('unknown', canaries, sees, sharedSubscriptions, `only ${canaries[0]!.endpoint.id} answered`)
    const pairs = canaries.length * (canaries.length - 1)
    const seen = [...sees.values()].reduce((sum, set) => sum + set.size, 0)
    return report(seen === pairs ? 'cluster' : seen === 0 ? 'independent' : 'partial', canaries, sees, sharedSubscriptions, undefined)
  } finally {
    for (const { client } of opened.filter((c) => c !== undefined)) client.end(true)
  }
}

function report(
  verdict: TopologyVerdict,
  canaries: readonly { endpoint: BrokerEndpoint }[],
  sees: ReadonlyMap<string, ReadonlySet<string>>,
  sharedSubscriptions: ReadonlySet<string>,
  reason: string | undefined,
): TopologyReport {
  return { verdict, reachable: canaries.map((c) => c.endpoint.id), sees, sharedSubscriptions, reason }
}

/** The verdict in words, for logs and errors: which broker sees which. */
export function describeTopology(report: TopologyReport): string {
  if (report.verdict === 'unknown') return report.reason ?? 'unknown'
  return report.reachable.map((id) => `${id} sees ${[...report.sees.get(id) ?? []].join(', ') || 'none of the others'}`).join('; ')
}

function noop(): void {}
