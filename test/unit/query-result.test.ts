import assert from 'node:assert/strict'
import { toQueryResult } from '../../plugins/kysely/query-result.js'

describe('toQueryResult, the shape PostgresDialect gives pg results', () => {
  it('passes rows through and counts no rows for a select', () => {
    assert.deepEqual(toQueryResult({ command: 'SELECT', rowCount: 2, rows: [{ a: 1 }, { a: 2 }] }), { numAffectedRows: undefined, rows: [{ a: 1 }, { a: 2 }] })
  })

  for (const command of ['INSERT', 'UPDATE', 'DELETE', 'MERGE']) {
    it(`counts the rows of ${command} as a bigint`, () => {
      assert.deepEqual(toQueryResult({ command, rowCount: 3, rows: [] }), { numAffectedRows: 3n, rows: [] })
    })
  }

  it('answers COMMIT and ROLLBACK with their command tag alone', () => {
    assert.deepEqual(toQueryResult({ command: 'COMMIT', rowCount: null, rows: [] }), { rows: [{ command: 'COMMIT' }] })
    assert.deepEqual(toQueryResult({ command: 'ROLLBACK', rowCount: null, rows: [] }), { rows: [{ command: 'ROLLBACK' }] })
  })

  it('gives no rows for the array pg returns for several statements', () => {
    const several = [{ command: 'SELECT', rowCount: 1, rows: [{ a: 1 }] }, { command: 'SELECT', rowCount: 1, rows: [{ b: 2 }] }]
    assert.deepEqual(toQueryResult(several as never), { numAffectedRows: undefined, rows: [] })
  })
})
