// The kernel's logger scrubs errors too, and the kernel imports nothing of the core: the function lives there.
export { scrubSecrets } from '../routemq/plugin-api.js'
