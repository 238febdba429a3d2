import type { TopicLevel } from './topic-pattern.js'

class TrieNode<T> {
  literals: Map<string, TrieNode<T>> | undefined
  single: TrieNode<T> | undefined
  exact: T | undefined
  rest: T | undefined
}

/**
 * Topic filters compiled into a tree of levels. A lookup walks the topic's
 * levels once, so its cost grows with the topic's depth, not with the number
 * of routes. When several filters match, a literal level beats a one-level
 * wildcard, which beats `#`.
 *
 * @example
 * const trie = new TopicTrie<string>()
 * trie.insert(parseTopicPattern('devices/+/status').levels, 'status')
 * trie.match('devices/7/status') // 'status'
 */
export class TopicTrie<T> {
  readonly #root = new TrieNode<T>()

  /** Adds a value under the filter; returns the value already there, if any, without replacing it. */
  insert(levels: readonly TopicLevel[], value: T): T | undefined {
    let node = this.#root
    for (const level of levels) {
      if (level.kind === 'multi') {
        if (node.rest !== undefined) return node.rest
        node.rest = value
        return undefined
      }
      if (level.kind === 'literal') {
        node.literals ??= new Map()
        let child = node.literals.get(level.value)
        if (!child) node.literals.set(level.value, (child = new TrieNode()))
        node = child
      } else {
        node = node.single ??= new TrieNode()
      }
    }
    if (node.exact !== undefined) return node.exact
    node.exact = value
    return undefined
  }

  /** The value of the most specific filter matching the topic's levels. */
  match(levels: readonly string[]): T | undefined {
    // MQTT: a wildcard in the first level never matches a topic starting with '$'.
    return walk(this.#root, levels, 0, levels[0]?.startsWith('$') === true)
  }
}

function walk<T>(node: TrieNode<T>, levels: readonly string[], index: number, dollar: boolean): T | undefined {
  if (index === levels.length) return node.exact ?? node.rest
  const literal = node.literals?.get(levels[index]!)
  if (literal) {
    const found = walk(literal, levels, index + 1, false)
    if (found !== undefined) return found
  }
  if (dollar && index === 0) return undefined
  if (node.single) {
    const found = walk(node.single, levels, index + 1, false)
    if (found !== undefined) return found
  }
  return node.rest
}
