// Types of loyalty.js. The service's own shapes come from types/api.d.ts, generated from
// /openapi.json (`make kit-types`); those of API.md's second part (coupons, stored value,
// membership) are written here from the contract until the service serves them, then they move
// to the generated ones.

import type { components } from './types/api'

type Schemas = components['schemas']
export type MemberCard = Schemas['MemberCard']
export type Login = Schemas['Login']
export type CheckIn = Schemas['CheckIn']
export type HistoryEntry = Schemas['HistoryEntry']
export type TierChange = Schemas['TierChange']
export type Reward = Schemas['Reward']
export type Redemption = Schemas['Redemption']
export type RedemptionCancelled = Schemas['RedemptionCancelled']
export type Subscriptions = Schemas['Subscriptions']
export type EnrollIn = Schemas['EnrollIn']
export type ProfileIn = Schemas['ProfileIn']
export type ErrorEnvelope = Schemas['ErrorEnvelope']

export interface Page<T> {
  items: T[]
  /** Pass as `cursor` for the next page; null on the last. */
  next_cursor: string | null
}

export interface PageQuery {
  limit?: number
  cursor?: string | null
}

/** What wx.requestPayment takes (API.md: top-ups and memberships answer it). */
export interface PayParams {
  appId: string
  timeStamp: string
  nonceStr: string
  package: string
  signType: string
  paySign: string
}

// --- API.md, second part (not served yet) ----------------------------------------------------

export interface Coupon {
  coupon_id: string
  code: string
  template_id: string
  name: string
  status: 'unused' | 'used' | 'expired'
  valid_from: string
  valid_until: string
  [more: string]: unknown
}

export interface TopUpPlan {
  plan_id: string
  pay_fen: number
  bonus_fen: number
}

export interface StoredValueEntry {
  id: string
  type: string
  amount_fen: number
  principal_fen: number
  bonus_fen: number
  balance_after_fen: number
  ref: string
  created_at: string
}

export interface MembershipPlan {
  plan_id: string
  name: string
  days: number
  price_fen: number
  trial: boolean
}

export type MembershipStarted =
  | { membership: { plan_id: string, until: string } }
  | { order_id: string, pay_params: PayParams, payment: unknown }

// --- the client ------------------------------------------------------------------------------

/** The parts of the mini-program's `wx` the client uses. */
export interface WxLike {
  request (options: {
    url: string
    method: string
    data?: string
    header?: Record<string, string>
    dataType?: string
    timeout?: number
    success (res: { statusCode: number, data: unknown, header: Record<string, string> }): void
    fail (err: { errMsg: string }): void
  }): unknown
  login (options: { success (res: { code: string }): void, fail (err: { errMsg: string }): void }): void
  getStorageSync (key: string): any
  setStorageSync (key: string, value: unknown): void
  removeStorageSync (key: string): void
  requestSubscribeMessage? (options: { tmplIds: string[], success (res: Record<string, string>): void, fail (err: { errMsg: string, errCode?: number }): void }): void
  requestPayment? (options: Omit<PayParams, 'appId'> & { success (res: unknown): void, fail (err: { errMsg: string }): void }): void
}

export interface ClientOptions {
  /** The API's address, e.g. `https://api.example.com` (no trailing slash needed). */
  baseUrl: string
  /** The mini-program's appid. */
  appid: string
  /** Default: the global `wx`. */
  wx?: WxLike
  /** Storage key of the session. Default `loyalty.session`. */
  storageKey?: string
  /** Extra attempts after a 503 `retry_later`. Default 3. */
  retries?: number
  /** First back-off in ms, doubled per attempt, with jitter. Default 300. */
  backoffMs?: number
  /** Longest back-off in ms. Default 5000. */
  maxBackoffMs?: number
  /** wx.request timeout in ms. Default 15000. */
  timeoutMs?: number
  /** Renew a token this many seconds before it expires. Default 60. */
  renewBeforeSeconds?: number
  sleep?: (ms: number) => Promise<void>
  now?: () => number
  random?: () => number
}

export interface Session {
  token: string
  /** Milliseconds since the epoch. */
  expiresAt: number
  enrolled: boolean
  memberId: string | null
}

export declare class LoyaltyError extends Error {
  name: 'LoyaltyError'
  /** The contract's error code (`insufficient_points`, `not_enrolled`, …) or one of the client's:
   * `network_error`, `http_<status>`, `phone_denied`, `subscribe_failed`, `payment_cancelled`,
   * `payment_failed`, `login_failed`, `unsupported`. */
  code: string
  /** HTTP status; 0 when no answer came. */
  status: number
  /** The server's request id (X-Request-Id), to quote to support. */
  requestId: string | null
  /** The request_id the call was sent with: call again with it to repeat it safely. */
  idempotencyKey: string | null
  /** The error envelope, when the service sent one. */
  body: ErrorEnvelope | Record<string, unknown> | null
  constructor (code: string, message?: string, fields?: Partial<Pick<LoyaltyError, 'status' | 'requestId' | 'idempotencyKey' | 'body'>>)
}

export interface SubscribeResult {
  accepted: string[]
  rejected: string[]
  /** Send credits per template after this consent; null if none was accepted (nothing sent). */
  credits: Record<string, number> | null
}

export interface LoyaltyClient {
  login (): Promise<Login>
  logout (): void
  session (): Session | null

  enroll (profile?: EnrollIn): Promise<MemberCard>
  card (): Promise<MemberCard>
  updateProfile (changes: ProfileIn): Promise<MemberCard>
  /** `code` is `e.detail.code` of `<button open-type="getPhoneNumber">`. */
  bindPhone (code: string | undefined): Promise<MemberCard>
  checkIn (): Promise<CheckIn>
  pointsHistory (page?: PageQuery): Promise<Page<HistoryEntry>>
  tierHistory (page?: PageQuery): Promise<Page<TierChange>>

  rewards (page?: PageQuery): Promise<Page<Reward>>
  redeem (redemption: { reward_id: string, quantity?: number, request_id?: string }): Promise<Redemption>
  cancelRedemption (redemptionId: string): Promise<RedemptionCancelled>
  subscribe (templateIds: string[]): Promise<SubscribeResult>

  coupons (filter?: PageQuery & { status?: 'unused' | 'used' | 'expired' }): Promise<Page<Coupon>>
  claimCoupon (claim: { template_id: string, request_id?: string }): Promise<Coupon>

  topUpPlans (page?: PageQuery): Promise<Page<TopUpPlan>>
  storedValueHistory (page?: PageQuery): Promise<Page<StoredValueEntry>>
  topUp (order: { plan_id: string, request_id?: string }): Promise<{ top_up_id: string, payment: unknown }>
  membershipPlans (page?: PageQuery): Promise<Page<MembershipPlan>>
  joinMembership (order: { plan_id: string, request_id?: string }): Promise<MembershipStarted>
  pay (payParams: PayParams): Promise<unknown>
  request<T = unknown> (method: string, path: string, body?: unknown, requestId?: string): Promise<T>
}

export declare function createClient (options: ClientOptions): LoyaltyClient
export declare function newRequestId (prefix?: string): string
