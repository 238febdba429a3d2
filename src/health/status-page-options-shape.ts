import { wholeNumber, type OptionShape } from '../routemq/plugin-api.js'
import type { StatusPageOptions } from './status-page.js'

/** The keys and types of `StatusPageOptions`. */
export const STATUS_PAGE_OPTIONS_SHAPE: OptionShape<StatusPageOptions> = {
  // Under half a second the page would cost the app more than it shows; over a minute it is no live view.
  refreshMs: wholeNumber(500, 60_000),
}
