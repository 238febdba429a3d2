import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

// Protocol name MQTT, level 4 (3.1.1), clean session, keep-alive 0.
const CONNECT_VARIABLE_HEADER = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00])
const DISCONNECT = Buffer.from([0xe0, 0x00])
// A refused or at once closed connection says nothing about when to try
// again; this keeps the retries from spinning.
const RETRY_PAUSE_MS = 200

/**
 * When and how long to keep asking a broker for a session.
 *
 * @example
 * const options: AwaitMqttSessionOptions = { timeoutMs: 30_000, attemptTimeoutMs: 6_000, alive: () => server.running }
 */
export interface AwaitMqttSessionOptions {
  /** Give up after this long in total. */
  readonly timeoutMs: number
  /** Give up on one CONNECT after this long and try again. */
  readonly attemptTimeoutMs: number
  /** Stop trying as soon as this returns `false`, e.g. because the server exited. */
  readonly alive: () => boolean
}

/**
 * How waiting for a session ended: accepted, or why not, with the outcome of
 * the last attempt for error messages.
 *
 * @example
 * const outcome: MqttSessionOutcome = { accepted: false, lastAttempt: 'closed without a CONNACK' }
 */
export type MqttSessionOutcome = { readonly accepted: true } | { readonly accepted: false; readonly lastAttempt: string }

/**
 * Sends MQTT 3.1.1 CONNECTs (clean session, a fresh client id each) to
 * `host:port` until one is answered by a CONNACK with return code 0, the
 * time is up or `alive()` says the server is gone, and resolves with how that
 * went. Stricter than `mqttBrokerResponds()`: a broker that holds the socket
 * and closes it without a CONNACK, as NATS does until JetStream has a
 * leader, has not accepted a session yet.
 *
 * @example
 * const outcome = await awaitMqttSession('127.0.0.1', 41883, { timeoutMs: 30_000, attemptTimeoutMs: 6_000, alive: () => true })
 * if (!outcome.accepted) throw new Error(outcome.lastAttempt)
 */
export async function awaitMqttSession(host: string, port: number, options: AwaitMqttSessionOptions): Promise<MqttSessionOutcome> {
  const deadline = Date.now() + options.timeoutMs
  let lastAttempt = 'no attempt made'
  while (options.alive()) {
    const remaining = deadline - Date.now()
    if (remaining <= 0) {
      break
    }
    const startedAt = Date.now()
    const outcome = await attemptSession(host, port, Math.min(options.attemptTimeoutMs, remaining))
    if (outcome === undefined) {
      return { accepted: true }
    }
    lastAttempt = outcome
    if (Date.now() - startedAt < RETRY_PAUSE_MS) {
      await delay(Math.min(RETRY_PAUSE_MS, Math.max(0, deadline - Date.now())))
    }
  }
  return { accepted: false, lastAttempt }
}

// Resolves undefined once a session is accepted, else says what happened.
function attemptSession(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0)
    const socket = connect({ host, port })
    const finish = (failure: string | undefined): void => {
      clearTimeout(timer)
      socket.removeAllListeners()
      socket.on('error', () => undefined)
      if (failure === undefined) {
        socket.end(DISCONNECT, () => socket.destroy())
      } else {
        socket.destroy()
      }
      resolve(failure)
    }
    const timer = setTimeout(() => finish(`no CONNACK within ${timeoutMs} ms`), timeoutMs)
    socket.once('connect', () => socket.write(connectPacket(`rmq-ready-${randomBytes(6).toString('hex')}`)))
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length < 4) {
        return
      }
      if (received[0] !== 0x20) {
        finish(`answered with packet type ${(received[0] ?? 0) >> 4} instead of a CONNACK`)
      } else {
        finish(received[3] === 0 ? undefined : `CONNACK with return code ${received[3]}`)
      }
    })
    socket.once('close', () => finish('closed without a CONNACK'))
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message))
  })
}

function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  const body = Buffer.concat([CONNECT_VARIABLE_HEADER, Buffer.from([id.length >> 8, id.length & 0xff]), id])
  // Client ids stay short, so the remaining length fits in one byte.
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}
