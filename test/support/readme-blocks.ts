import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

/** A fenced block of the README marked `<!-- quickstart:<kind> [path] -->` on the line before its fence. */
export interface ReadmeBlock {
  readonly kind: string
  /** The file the block is, for `quickstart:file <path>`. */
  readonly path: string | undefined
  readonly text: string
}

const MARKER = /^<!-- quickstart:(\S+)(?: (\S+))? -->$/

/**
 * The README's marked blocks, in order. A marker not followed by a fence fails,
 * so a block the tests rely on cannot silently lose its marker's meaning.
 *
 * @example
 * readmeBlocks(readmePath).find((block) => block.kind === 'install')!.text
 */
export function readmeBlocks(readmePath: string): ReadmeBlock[] {
  const lines = readFileSync(readmePath, 'utf8').split('\n')
  const blocks: ReadmeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]!)
    if (!marker) continue
    assert.match(lines[i + 1] ?? '', /^```\w+$/, `README line ${i + 2}: a fence must follow <!-- quickstart:${marker[1]} -->`)
    const end = lines.indexOf('```', i + 2)
    assert.ok(end > 0, `README line ${i + 2}: the fence after <!-- quickstart:${marker[1]} --> is never closed`)
    blocks.push({ kind: marker[1]!, path: marker[2], text: lines.slice(i + 2, end).join('\n') + '\n' })
    i = end
  }
  return blocks
}

/** The one block of a kind; fails naming the marker when there is none or several. */
export function readmeBlock(blocks: readonly ReadmeBlock[], kind: string): ReadmeBlock {
  const found = blocks.filter((block) => block.kind === kind)
  assert.equal(found.length, 1, `the README needs exactly one <!-- quickstart:${kind} --> block, has ${found.length}`)
  return found[0]!
}
