// Runs a command with one local stack for all of it: `node with-stack.mjs node --test test/`.
// The command sees LOYALTY_API, LOYALTY_WECHAT, LOYALTY_DYNAMODB and LOYALTY_PUMP_LOG (what
// lib/stack.mjs's `settle` needs); the stack stops when it ends.

import { spawn } from 'node:child_process'
import { startStack } from './lib/stack.mjs'

const [command, ...args] = process.argv.slice(2)
if (!command) {
  console.error('usage: node with-stack.mjs COMMAND [ARGS...]')
  process.exit(2)
}
const stack = await startStack()
let code = 1
try {
  const child = spawn(command, args, {
    stdio: 'inherit',
    env: {
      ...process.env,
      LOYALTY_API: stack.api,
      LOYALTY_WECHAT: stack.wechat,
      LOYALTY_DYNAMODB: stack.dynamodb,
      LOYALTY_PUMP_LOG: stack.pumpLog
    }
  })
  code = await new Promise(resolve => child.on('exit', (c, signal) => resolve(signal ? 1 : c)))
} finally {
  await stack.stop()
}
process.exit(code)
