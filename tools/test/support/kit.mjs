// The mini-program's own files, loaded in Node as the mini-program runtime loads them (CommonJS).

import { createRequire } from 'node:module'
import { join } from 'node:path'
import { REPO_ROOT } from '../../lib/stack.mjs'

export const MINIPROGRAM = join(REPO_ROOT, 'miniprogram')
export const require = createRequire(join(MINIPROGRAM, 'loyalty.js'))
export const { createClient, LoyaltyError, newRequestId } = require('./loyalty.js')
export const APPID = 'wxdemo0000000000'

/** Resolves to the LoyaltyError a promise rejects with (fails if it resolves). */
export async function rejection (promise) {
  try {
    const value = await promise
    throw new Error(`expected a LoyaltyError, got ${JSON.stringify(value)}`)
  } catch (error) {
    if (!(error instanceof LoyaltyError)) throw error
    return error
  }
}

export function shanghaiNow () {
  const shifted = new Date(Date.now() + 8 * 3600_000 - 60_000)
  return shifted.toISOString().replace(/\.\d{3}Z$/, '+08:00')
}

/** A phone number no other test run on the same stack has bound: 138 and 8 random digits. */
export function freshPhone () {
  return '138' + String(Math.floor(Math.random() * 1e8)).padStart(8, '0')
}

export const masked = phone => `${phone.slice(0, 3)}****${phone.slice(-4)}`
