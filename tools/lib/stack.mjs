// The local stack for the kit's tests and for generating types: `python -m devstack` on free
// ports in its own process group (as tests/e2e/conftest.py starts it), ready once /health answers,
// stopped with SIGTERM to the group. LOYALTY_API (with LOYALTY_WECHAT, LOYALTY_DYNAMODB and
// LOYALTY_PUMP_LOG) points at a running stack instead, e.g. the one tools/with-stack.mjs started for
// a whole `node --test` run. `settle(stack)` waits until the stream handlers have caught up.

import { spawn } from 'node:child_process'
import { existsSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 20_000
const SETTLE_TIMEOUT_MS = 30_000
// `python -m devstack` with the LOYALTY_* variables removed (below): the default table and region.
const TABLE = 'loyalty-local'
const REGION = 'us-east-1'

function freePort () {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolvePort(port))
    })
  })
}

async function freePorts (count) {
  const ports = new Set()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

function python () {
  return process.env.LOYALTY_PYTHON
    ? resolve(process.cwd(), process.env.LOYALTY_PYTHON)
    : join(REPO_ROOT, '.venv', 'bin', 'python')
}

function tail (path, lines = 40) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/**
 * A stack of our own, or the one LOYALTY_API names. Resolves {api, wechat, dynamodb, pumpLog, stop()}:
 * `dynamodb` is the embedded DynamoDB's endpoint and `pumpLog` the file the stream pump logs each
 * invocation to (what `settle` needs; absent for a stack started elsewhere without them).
 */
export async function startStack () {
  if (process.env.LOYALTY_API) {
    return {
      api: process.env.LOYALTY_API,
      wechat: process.env.LOYALTY_WECHAT,
      dynamodb: process.env.LOYALTY_DYNAMODB,
      pumpLog: process.env.LOYALTY_PUMP_LOG,
      stop: async () => {}
    }
  }
  const [apiPort, wechatPort, dynamodbPort] = await freePorts(3)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOYALTY_')))
  Object.assign(env, {
    PORT: String(apiPort),
    WECHAT_PORT: String(wechatPort),
    DYNAMODB_PORT: String(dynamodbPort),
    PYTHONUNBUFFERED: '1'
  })
  const log = join(tmpdir(), `loyalty-kit-stack-${process.pid}-${apiPort}.log`)
  const pumpLog = join(tmpdir(), `loyalty-kit-pump-${process.pid}-${apiPort}.jsonl`)
  env.DEVSTACK_PUMP_LOG = pumpLog
  const out = openSync(log, 'w')
  const child = spawn(python(), ['-m', 'devstack'], {
    cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', out, out]
  })
  let exited = null
  const done = new Promise(resolveExit => child.on('exit', (code, signal) => {
    exited = { code, signal }
    resolveExit(exited)
  }))
  const api = `http://127.0.0.1:${apiPort}`
  const stop = async () => {
    if (exited) return
    try { process.kill(-child.pid, 'SIGTERM') } catch { return }
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, STOP_TIMEOUT_MS)
    await done
    clearTimeout(timer)
  }
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the local stack exited (${JSON.stringify(exited)}) while starting:\n${tail(log)}`)
    try {
      const answer = await fetch(`${api}/health`, { signal: AbortSignal.timeout(2000) })
      if (answer.status === 200) {
        return { api, wechat: `http://127.0.0.1:${wechatPort}`, dynamodb: `http://127.0.0.1:${dynamodbPort}`, pumpLog, stop, log }
      }
    } catch { /* not up yet */ }
    await new Promise(r => setTimeout(r, 200))
  }
  await stop()
  throw new Error(`the local stack did not answer /health within ${START_TIMEOUT_MS / 1000} s:\n${tail(log)}`)
}

// --- waiting for the stream handlers -------------------------------------------------------

/** One DynamoDB JSON call to the embedded DynamoDB (it checks no signature; the region is in the scope). */
async function dynamodb (stack, action, body) {
  const answer = await fetch(stack.dynamodb, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': `DynamoDB_20120810.${action}`,
      Authorization: `AWS4-HMAC-SHA256 Credential=local/20260101/${REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=local`
    },
    body: JSON.stringify({ TableName: TABLE, ...body }),
    signal: AbortSignal.timeout(10_000)
  })
  if (answer.status !== 200) throw new Error(`DynamoDB ${action}: ${answer.status} ${await answer.text()}`)
}

function pumpEntries (path) {
  if (!existsSync(path)) return []
  // The pump may be writing a line as we read (a long one goes out in pieces): only whole lines.
  const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1)
  return lines.filter(line => line.trim()).map(line => JSON.parse(line))
}

/**
 * Waits until every stream function has been handed everything written to the table before this
 * call, and what their reactions wrote meanwhile, `rounds` times over (the default 2 covers a
 * reaction's reaction: a ledger row -> a notification job -> its sending). A shard is delivered in
 * order, so once a marker item written now has reached a function (ok, or parked on the failure
 * queue), so has everything before it. Each function (one per `on_dynamodb_record` handler) polls
 * on its own, as on Lambda: the marker must reach every one of them.
 */
export async function settle (stack, { rounds = 2, timeoutMs = SETTLE_TIMEOUT_MS } = {}) {
  if (!stack.dynamodb || !stack.pumpLog) {
    throw new Error('settle needs the stack\'s DynamoDB endpoint and pump log (LOYALTY_DYNAMODB, LOYALTY_PUMP_LOG)')
  }
  const deadline = Date.now() + timeoutMs
  for (let round = 0; round < rounds; round++) {
    const marker = `KIT#settle#${process.pid}#${Date.now()}#${Math.random().toString(36).slice(2)}`
    const key = { pk: { S: marker }, sk: { S: 'MARKER' } }
    await dynamodb(stack, 'PutItem', { Item: key })
    try {
      for (;;) {
        const entries = pumpEntries(stack.pumpLog)
        const functions = new Set(entries.map(e => e.function))
        const reached = new Set(entries
          .filter(e => (e.outcome === 'ok' || e.outcome === 'dead_lettered') && e.records.some(r => r.keys.pk === marker))
          .map(e => e.function))
        if (functions.size && [...functions].every(f => reached.has(f))) break
        if (Date.now() > deadline) {
          throw new Error(`the stream handlers did not catch up within ${timeoutMs / 1000} s (reached: ${[...reached]} of ${[...functions]})`)
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    } finally {
      await dynamodb(stack, 'DeleteItem', { Key: key })
    }
  }
}
