// The local stack for the kit's tests and for generating types: `python -m devstack` on free
// ports in its own process group (as tests/e2e/conftest.py starts it), ready once /health answers,
// stopped with SIGTERM to the group. LOYALTY_API (with LOYALTY_WECHAT) points at a running stack
// instead, e.g. the one tools/with-stack.mjs started for a whole `node --test` run.

import { spawn } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 20_000

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

/** A stack of our own, or the one LOYALTY_API names. Resolves {api, wechat, stop()}. */
export async function startStack () {
  if (process.env.LOYALTY_API) {
    return { api: process.env.LOYALTY_API, wechat: process.env.LOYALTY_WECHAT, stop: async () => {} }
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
      if (answer.status === 200) return { api, wechat: `http://127.0.0.1:${wechatPort}`, stop, log }
    } catch { /* not up yet */ }
    await new Promise(r => setTimeout(r, 200))
  }
  await stop()
  throw new Error(`the local stack did not answer /health within ${START_TIMEOUT_MS / 1000} s:\n${tail(log)}`)
}
