// Till calls, signed as ../shared/API.md says (tests/support/calls.py::till_headers in Python).

import { createHash, createHmac, randomBytes } from 'node:crypto'

export const TILL_KEY_ID = 'dev-pos'
export const TILL_SECRET = 'dev-pos-secret'

export function tillHeaders (method, pathWithQuery, body, { keyId = TILL_KEY_ID, secret = TILL_SECRET } = {}) {
  const timestamp = String(Math.floor(Date.now() / 1000))
  const nonce = randomBytes(12).toString('hex')
  const message = [method.toUpperCase(), pathWithQuery, timestamp, nonce,
    createHash('sha256').update(body).digest('hex')].join('\n')
  return {
    'Content-Type': 'application/json',
    'X-Loyalty-Key': keyId,
    'X-Loyalty-Timestamp': timestamp,
    'X-Loyalty-Nonce': nonce,
    'X-Loyalty-Signature': createHmac('sha256', secret).update(message, 'utf8').digest('hex')
  }
}

export async function till (api, method, path, body) {
  const raw = body === undefined ? '' : JSON.stringify(body)
  const answer = await fetch(api + path, { method, headers: tillHeaders(method, path, raw), body: raw || undefined })
  return { status: answer.status, body: await answer.json() }
}

export async function staff (api, method, path, body) {
  const answer = await fetch(api + path, {
    method,
    headers: { Authorization: 'Bearer dev-admin-key', 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: answer.status, body: await answer.json() }
}
