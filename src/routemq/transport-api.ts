// The kernel's MQTT.js helpers for a transport implementation (plugins/mqtt's BrokerPool):
// CONNACK waits, deferred acknowledgements and their self-check, subscription grants.
// Apart from plugin-api.ts because these load MQTT.js, which other plugins don't need.
export { awaitConnack } from './connack.js'
export { receiveWithDeferredAcks } from './deferred-ack-receiver.js'
export { verifyDeferredAcks } from './deferred-ack-self-check.js'
export { outgoingDrained } from './outgoing-drained.js'
export { subscribeAll } from './subscription-grants.js'
