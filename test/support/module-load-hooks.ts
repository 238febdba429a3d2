// Module customization hooks (node:module register) that append every URL the
// ESM loader resolves to a file, for tests that check which packages an entry
// point loads. They run on the loader's own thread, hence the file rather
// than a variable; `initialize` receives its path.
import { appendFileSync } from 'node:fs'

let file: string | undefined

export function initialize(data: { readonly file: string }): void {
  file = data.file
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<{ readonly url: string }>,
): Promise<{ readonly url: string }> {
  const resolved = await next(specifier, context)
  if (file !== undefined) appendFileSync(file, `${resolved.url}\n`)
  return resolved
}
