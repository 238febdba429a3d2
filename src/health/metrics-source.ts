/**
 * What the health server serves on `/metrics`: a `LoadBalancingMetrics`
 * satisfies it. An interface of src/health's own, so the health side never
 * imports the metrics' classes (the layer rules).
 */
export interface MetricsSource {
  /** The exposition text, in the registry's content type. */
  text(): Promise<string>
  readonly registry: { readonly contentType: string }
}

/** Whether a value can serve `/metrics`: by what it does, not by class (another copy of the package has its own class). */
export function isMetricsSource(value: unknown): value is MetricsSource {
  const source = value as Partial<MetricsSource> | null | undefined
  return typeof source?.text === 'function' && typeof source.registry?.contentType === 'string'
}
