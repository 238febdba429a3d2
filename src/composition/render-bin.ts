#!/usr/bin/env node
// `npx routemq-load-balancing render haproxy|nginx|kubernetes [--env-file f | --config f] [--out dir]`
import { runCli } from './render-cli.js'

process.exitCode = await runCli(process.argv.slice(2))
