/** Removes the listener it was returned for. Calling it twice is harmless. */
export type Disposer = () => void

/**
 * One kind of event with typed listeners; subscribing returns its disposer.
 * A listener that throws does not stop the others or the emitter: its error
 * goes to `onListenerError` (by default, a process warning).
 *
 * @example
 * const failover = new TypedEvent<{ from: string; to: string }>()
 * const off = failover.on((e) => console.log(e.from, '->', e.to))
 * off()
 */
export class TypedEvent<T> {
  readonly #listeners = new Set<(event: T) => void>()
  readonly #onListenerError: (error: unknown) => void

  constructor(onListenerError: (error: unknown) => void = defaultListenerError) {
    this.#onListenerError = onListenerError
  }

  /** Calls `listener` on every event until the returned disposer is called. */
  on(listener: (event: T) => void): Disposer {
    const wrapped = (event: T): void => listener(event)
    this.#listeners.add(wrapped)
    return () => {
      this.#listeners.delete(wrapped)
    }
  }

  emit(event: T): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch (error) {
        this.#onListenerError(error)
      }
    }
  }

  get listenerCount(): number {
    return this.#listeners.size
  }
}

function defaultListenerError(error: unknown): void {
  process.emitWarning(`an event listener threw: ${error instanceof Error ? error.message : String(error)}`, 'ListenerError')
}
