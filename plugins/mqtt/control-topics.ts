/** What a session's presence message says. */
export type MemberState =
  /** Its instance is connected. */
  | 'online'
  /** Its instance is stopping and handing its share back. */
  | 'stopping'
  /** Its instance went away without a DISCONNECT (its will, after the will delay): adopt it. */
  | 'orphaned'
  /** Its instance stopped, alone, and kept the session for the next one: adopt it unless it is ours. */
  | 'left'

const STATES: ReadonlySet<string> = new Set<MemberState>(['online', 'stopping', 'orphaned', 'left'])

/**
 * The pool's own topics under `<controlTopic>/<group>/`:
 * - `members/<session client id>`: retained presence of each session
 *   (`{"state":"online"}`; the will sets `orphaned`; empty once ended);
 * - `barrier/<session client id>`: a marker a session publishes to itself,
 *   which arrives after everything the broker queued for it before;
 * - `canary`: the topology check's canaries;
 * - `<controlTopic>/ready` (the same for every group): subscribed at QoS 0 by every session, so that a balancer's
 *   MQTT 5 check (a QoS 1 publish answered "no matching subscribers" or not)
 *   admits devices only to brokers where the app is subscribed.
 *
 * @example
 * const topics = new ControlTopics('routemq/control', 'billing')
 * topics.member('billing-1-2') // 'routemq/control/billing/members/billing-1-2'
 */
export class ControlTopics {
  readonly base: string
  readonly members: string
  readonly canary: string
  /** Subscribed by every session of the group, so that a balancer's check can tell a broker where the app is subscribed. */
  readonly ready: string

  constructor(controlTopic: string, group: string) {
    this.base = `${controlTopic}/${group}`
    this.members = `${this.base}/members/+`
    this.canary = `${this.base}/canary`
    // Not per group: a balancer rendered without the app's group must check the same topic.
    this.ready = `${controlTopic}/ready`
  }

  /** A session's level is its client id in base64url: any client id, and only characters every broker takes in a topic (NATS refuses `.`). */
  member(sessionId: string): string {
    return `${this.base}/members/${level(sessionId)}`
  }

  barrier(sessionId: string): string {
    return `${this.base}/barrier/${level(sessionId)}`
  }

  /** Whether `topic` is one of the pool's own (never handed to the application). */
  owns(topic: string): boolean {
    return topic.startsWith(`${this.base}/`) || topic === this.ready
  }

  /** The session a `members/<id>` topic is about, or `undefined`. */
  memberOf(topic: string): string | undefined {
    return sessionOf(topic, `${this.base}/members/`)
  }

  /** The session a `barrier/<id>` topic is about, or `undefined`. */
  barrierOf(topic: string): string | undefined {
    return sessionOf(topic, `${this.base}/barrier/`)
  }
}

function level(sessionId: string): string {
  return Buffer.from(sessionId, 'utf8').toString('base64url')
}

function sessionOf(topic: string, prefix: string): string | undefined {
  if (!topic.startsWith(prefix)) return undefined
  const encoded = topic.slice(prefix.length)
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined
  return Buffer.from(encoded, 'base64url').toString('utf8')
}

/** A presence payload; `''` clears the retained message. */
export function presence(state: MemberState): string {
  return JSON.stringify({ state, at: Date.now() })
}

/** The state a presence payload says, `undefined` for an empty (cleared) or unreadable one. */
export function parsePresence(payload: Buffer): MemberState | undefined {
  if (payload.length === 0 || payload.length > 1024) return undefined
  try {
    const state = (JSON.parse(payload.toString('utf8')) as { state?: unknown } | null)?.state
    return typeof state === 'string' && STATES.has(state) ? (state as MemberState) : undefined
  } catch {
    return undefined
  }
}
