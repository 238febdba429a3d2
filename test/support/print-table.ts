/**
 * Prints rows as an aligned text table under a title; the first row is the header.
 *
 * @example
 * printTable('Results', [['name', 'value'], ['p50', '3 ms']])
 */
export function printTable(title: string, rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  const line = (row: readonly string[]): string => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()
  console.log(title)
  console.log(line(rows[0]!))
  console.log(widths.map((width) => '-'.repeat(width)).join('  '))
  for (const row of rows.slice(1)) console.log(line(row))
  console.log()
}
