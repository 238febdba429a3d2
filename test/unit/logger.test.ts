import assert from 'node:assert/strict'
import { pino } from 'pino'
import { ConsoleLogger, InvalidOptionError, loadBalancingOptionsFromEnv, loggerFromEnv, pinoLogger, silentLogger, type LogFormat } from '../../src/index.js'
import { safeLogger } from '../../src/routemq/logger.js'

function capture(format: LogFormat, level: 'debug' | 'info' = 'info'): { logger: ConsoleLogger; lines: string[] } {
  const lines: string[] = []
  return { logger: new ConsoleLogger({ format, level, write: (line) => lines.push(line) }), lines }
}

/** A connect failure as pg reports it, under the error the pool throws. */
function failure(): Error {
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED', password: 'hunter2' })
  return new Error('write failed on postgres://app:hunter2@db.internal:5432/app', { cause: refused })
}

describe('ConsoleLogger', () => {
  describe('json format', () => {
    it('writes one JSON object per entry with time, level, msg and the fields at the top', () => {
      const { logger, lines } = capture('json')
      logger.warn('broker down', { broker: 'b1', attempts: 3 })
      assert.equal(lines.length, 1)
      assert.ok(!lines[0]!.includes('\n'))
      const entry = JSON.parse(lines[0]!) as Record<string, unknown>
      assert.equal(entry.level, 'warn')
      assert.equal(entry.msg, 'broker down')
      assert.equal(entry.broker, 'b1')
      assert.equal(entry.attempts, 3)
      assert.ok(!Number.isNaN(Date.parse(entry.time as string)))
    })

    it('describes an error with name, message, stack, code and its cause chain, and no secret', () => {
      const { logger, lines } = capture('json')
      logger.error('write failed', { error: failure() })
      const { error } = JSON.parse(lines[0]!) as { error: { name: string; message: string; stack: string; cause: { message: string; code: string; stack: string } } }
      assert.equal(error.name, 'Error')
      assert.equal(error.message, 'write failed on db.internal:5432')
      assert.match(error.stack, /logger\.test\.js/)
      assert.equal(error.cause.message, 'connect ECONNREFUSED 10.0.0.5:5432')
      assert.equal(error.cause.code, 'ECONNREFUSED')
      assert.match(error.cause.stack, /at failure/)
      assert.ok(!lines[0]!.includes('hunter2'), lines[0])
    })

    it('lists the errors of an AggregateError and stops at a cause that loops', () => {
      const { logger, lines } = capture('json')
      const looping = new Error('a')
      const other = new Error('b', { cause: looping })
      ;(looping as { cause?: unknown }).cause = other
      logger.warn('x', { error: new AggregateError([new Error('::1 refused'), new Error('127.0.0.1 refused')], 'connect failed'), looping })
      const entry = JSON.parse(lines[0]!) as { error: { errors: { message: string }[] }; looping: { cause: { message: string; cause?: unknown } } }
      assert.deepEqual(entry.error.errors.map((e) => e.message), ['::1 refused', '127.0.0.1 refused'])
      assert.equal(entry.looping.cause.message, 'b')
      assert.equal(entry.looping.cause.cause, undefined)
    })

    it('keeps the entry\'s own keys from fields of the same name, writes BigInts and survives a circular field', () => {
      const { logger, lines } = capture('json')
      const circular: Record<string, unknown> = { a: 1 }
      circular.self = circular
      logger.info('m', { msg: 'field', level: 'field', lsn: 123n, circular })
      const entry = JSON.parse(lines[0]!) as Record<string, unknown>
      assert.equal(entry.msg, 'm')
      assert.equal(entry.level, 'info')
      assert.equal(entry._msg, 'field')
      assert.equal(entry._level, 'field')
      assert.equal(entry.lsn, '123')
      assert.deepEqual(entry.circular, { a: 1, self: '[Circular]' })
    })
  })

  describe('text format', () => {
    it('writes an error with its causes on the line, and its stack below at ERROR only', () => {
      const { logger, lines } = capture('text')
      logger.warn('write failed', { error: failure() })
      logger.error('write failed', { error: failure() })
      assert.match(lines[0]!, /^\S+ WARN write failed error="Error: write failed on db\.internal:5432 ← Error: connect ECONNREFUSED 10\.0\.0\.5:5432"$/)
      const [first, ...stack] = lines[1]!.split('\n')
      assert.match(first!, /^\S+ ERROR write failed error="Error: write failed/)
      assert.match(stack[0]!, /^ {4}Error: write failed on db\.internal:5432$/)
      assert.ok(stack.some((line) => /^ {8}at /.test(line)))
      assert.ok(stack.includes('    caused by:'))
      assert.ok(!lines.join('\n').includes('hunter2'))
    })
  })

  it('refuses a format it does not know, naming the field', () => {
    assert.throws(() => new ConsoleLogger({ format: 'logfmt' as never }), (error: unknown) => error instanceof InvalidOptionError && error.field === 'logger.format')
  })
})

describe('pino', () => {
  function pinoInto(): { log: ReturnType<typeof pino>; entries: Record<string, unknown>[] } {
    const entries: Record<string, unknown>[] = []
    // pino writes each entry to the destination's write() as it is logged.
    const destination = { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) }
    return { log: pino({ level: 'debug' }, destination), entries }
  }

  it('pinoLogger passes message and fields in pino\'s order, errors described and scrubbed', () => {
    const { log, entries } = pinoInto()
    const logger = pinoLogger(log)
    logger.warn('broker down', { broker: 'b1' })
    logger.error('write failed', { error: failure() })
    assert.equal(entries.length, 2)
    assert.equal(entries[0]!.msg, 'broker down')
    assert.equal(entries[0]!.broker, 'b1')
    assert.equal(entries[0]!.level, 40)
    const error = entries[1]!.error as { message: string; cause: { code: string } }
    assert.equal(error.message, 'write failed on db.internal:5432')
    assert.equal(error.cause.code, 'ECONNREFUSED')
    assert.ok(!JSON.stringify(entries).includes('hunter2'))
  })

  it('a pino logger given where a Logger is expected is adapted, not called with its arguments reversed', () => {
    const { log, entries } = pinoInto()
    safeLogger(log.child({ component: 'routemq' })).info('replica healthy', { replica: 'r1' })
    assert.equal(entries[0]!.msg, 'replica healthy')
    assert.equal(entries[0]!.replica, 'r1')
    assert.equal(entries[0]!.component, 'routemq')
  })

  it('pinoLogger refuses what is no logger', () => {
    assert.throws(() => pinoLogger({} as never), /takes a pino logger/)
  })
})

describe('ROUTEMQ_LOG_LEVEL and ROUTEMQ_LOG_FORMAT', () => {
  const BROKERS = { ROUTEMQ_MQTT_BROKERS: 'mqtt://127.0.0.1:1883' }

  it('loggerFromEnv gives a ConsoleLogger of that level and format', () => {
    const lines: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string) => lines.push(chunk) > 0)
    try {
      const logger = loggerFromEnv({ ROUTEMQ_LOG_LEVEL: 'warn', ROUTEMQ_LOG_FORMAT: 'json' })
      logger.info('not written')
      logger.warn('written', { broker: 'b1' })
    } finally {
      process.stderr.write = write
    }
    assert.equal(lines.length, 1)
    assert.deepEqual({ ...JSON.parse(lines[0]!), time: undefined }, { time: undefined, level: 'warn', msg: 'written', broker: 'b1' })
  })

  it('a value it does not know is refused naming the variable', () => {
    for (const [name, value] of [['ROUTEMQ_LOG_LEVEL', 'warning'], ['ROUTEMQ_LOG_FORMAT', 'logfmt']] as const) {
      assert.throws(() => loggerFromEnv({ [name]: value }), (error: unknown) => error instanceof InvalidOptionError && error.field === name && error.message.includes(value))
      assert.throws(() => loadBalancingOptionsFromEnv({ ...BROKERS, [name]: value }), (error: unknown) => error instanceof InvalidOptionError && error.field === name)
    }
  })

  it('fromEnv gives the module such a logger when either is set, and an override\'s logger replaces it', () => {
    assert.equal(loadBalancingOptionsFromEnv(BROKERS).logger, undefined)
    assert.ok(loadBalancingOptionsFromEnv({ ...BROKERS, ROUTEMQ_LOG_FORMAT: 'json' }).logger instanceof ConsoleLogger)
    assert.equal(loadBalancingOptionsFromEnv({ ...BROKERS, ROUTEMQ_LOG_LEVEL: 'debug' }, { logger: silentLogger }).logger, silentLogger)
  })
})
