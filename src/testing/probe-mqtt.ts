import { connect } from 'node:net'

// MQTT 3.1.1 CONNECT: clean session, keep-alive 0, empty client id (the
// broker assigns one).
const CONNECT = Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00])
const DISCONNECT = Buffer.from([0xe0, 0x00])

/**
 * Resolves `true` once the broker at `host:port` has reacted to an MQTT
 * CONNECT, with a CONNACK or by closing the connection (a TLS or
 * authenticating listener refuses it, which counts just the same), `false`
 * when the connection is refused or fails, or nothing happens within
 * `timeoutMs`. Unlike a bare TCP connect, which the kernel accepts as soon as
 * the port is bound, a reaction proves the broker's main loop is running.
 *
 * @example
 * if (!(await mqttBrokerResponds('127.0.0.1', 41883, 5_000))) throw new Error('broker not serving')
 */
export function mqttBrokerResponds(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let connected = false
    const socket = connect({ host, port })
    const finish = (answer: boolean, farewell?: Buffer): void => {
      clearTimeout(timer)
      socket.removeAllListeners()
      socket.on('error', () => undefined)
      if (farewell === undefined) {
        socket.destroy()
      } else {
        socket.end(farewell, () => socket.destroy())
      }
      resolve(answer)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.once('connect', () => {
      connected = true
      socket.write(CONNECT)
    })
    socket.once('data', () => finish(true, DISCONNECT))
    // After the connect, a close or reset is the broker's answer too.
    socket.once('close', () => finish(connected))
    socket.once('error', () => finish(connected))
  })
}
