/**
 * The loyalty service's client for a WeChat mini-program. No dependencies: it needs only the
 * mini-program's `wx` (or any object with the same functions, e.g. a test's).
 *
 *   const { createClient } = require('./loyalty.js')
 *   const loyalty = createClient({ baseUrl: 'https://api.example.com', appid: 'wx…' })
 *   const card = await loyalty.enroll({ nickname: 'Alice' })  // logs in with wx.login first
 *
 * What it does for you:
 * - Login: `wx.login` → `POST /v1/auth/login`; the token is kept in storage (wx.setStorageSync)
 *   and renewed before it expires; a 401 on a member call logs in again once and repeats it.
 * - Errors: every failure is a `LoyaltyError` with the contract's `code` (`insufficient_points`,
 *   `not_enrolled`, …), the HTTP `status` and the server's `requestId`.
 * - Retries: only a 503 `retry_later` (throttling; nothing changed) is retried, with exponential
 *   back-off and jitter (honouring Retry-After). Nothing else is repeated behind your back.
 * - Idempotency: calls that change a balance carry a `request_id`, generated when you give none
 *   and the same on every retry, so a retried redemption or top-up happens once.
 * - WeChat: `wx.requestSubscribeMessage` → `POST /v1/members/me/subscriptions`,
 *   `wx.requestPayment` with the `pay_params` of top-ups and memberships, phone binding from the
 *   `getPhoneNumber` button's code.
 *
 * Types: loyalty.d.ts (the client) and types/api.d.ts (generated from /openapi.json).
 */

'use strict'

const DEFAULTS = {
  storageKey: 'loyalty.session',
  retries: 3, // extra attempts after a 503 retry_later
  backoffMs: 300, // first delay; doubles per attempt, with jitter
  maxBackoffMs: 5000,
  timeoutMs: 15000,
  renewBeforeSeconds: 60 // renew a token this long before it expires
}

class LoyaltyError extends Error {
  /**
   * @param {string} code the contract's error code, or one of the client's own:
   *   `network_error`, `http_<status>`, `phone_denied`, `subscribe_failed`, `payment_cancelled`,
   *   `payment_failed`, `login_failed`
   */
  constructor (code, message, fields) {
    super(message || code)
    this.name = 'LoyaltyError'
    this.code = code
    this.status = (fields && fields.status) || 0
    this.requestId = (fields && fields.requestId) || null // the server's X-Request-Id
    this.idempotencyKey = (fields && fields.idempotencyKey) || null // pass it again to repeat safely
    this.body = (fields && fields.body) || null
  }
}

/** An id for an idempotent call: 1-64 of [A-Za-z0-9._:-], unique enough to never repeat. */
function newRequestId (prefix) {
  let random = ''
  while (random.length < 16) random += Math.random().toString(36).slice(2)
  return (prefix || 'mp') + '-' + Date.now().toString(36) + '-' + random.slice(0, 16)
}

function headerValue (headers, name) {
  if (!headers) return undefined
  const wanted = name.toLowerCase()
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === wanted) return headers[key]
  }
  return undefined
}

function query (params) {
  const pairs = []
  for (const key of Object.keys(params || {})) {
    const value = params[key]
    if (value === undefined || value === null || value === '') continue
    pairs.push(encodeURIComponent(key) + '=' + encodeURIComponent(String(value)))
  }
  return pairs.length ? '?' + pairs.join('&') : ''
}

/** A wx API that takes success/fail callbacks, as a promise. */
function call (wx, name, options) {
  return new Promise((resolve, reject) => {
    if (!wx || typeof wx[name] !== 'function') {
      reject(new LoyaltyError('unsupported', 'wx.' + name + ' is not available'))
      return
    }
    wx[name](Object.assign({}, options, { success: resolve, fail: reject }))
  })
}

/**
 * @param {object} options
 * @param {string} options.baseUrl the API's address, without a trailing slash
 * @param {string} options.appid the mini-program's appid
 * @param {object} [options.wx] the wx object (default: the global `wx`)
 */
function createClient (options) {
  const settings = Object.assign({}, DEFAULTS, options)
  if (!settings.baseUrl || !settings.appid) throw new TypeError('createClient needs baseUrl and appid')
  const baseUrl = settings.baseUrl.replace(/\/+$/, '')
  const wx = settings.wx || (typeof globalThis !== 'undefined' ? globalThis.wx : undefined)
  const sleep = settings.sleep || (ms => new Promise(resolve => setTimeout(resolve, ms)))
  const now = settings.now || (() => Date.now())
  const random = settings.random || Math.random
  let loggingIn = null // one login at a time, shared by the calls that wait for it

  // --- the session in storage -------------------------------------------------------------
  // Storage is shared by every page (and survives restarts); the copy in memory keeps a session
  // usable if storage refuses a write.

  let remembered = null

  function loadSession () {
    try {
      const stored = wx.getStorageSync(settings.storageKey)
      if (stored && stored.token) return stored
    } catch (e) { /* fall back to the copy in memory */ }
    return remembered
  }

  function saveSession (session) {
    remembered = session
    try {
      wx.setStorageSync(settings.storageKey, session)
    } catch (e) { /* storage full or denied: the copy in memory still works for this run */ }
    return session
  }

  function forgetSession () {
    remembered = null
    try {
      wx.removeStorageSync(settings.storageKey)
    } catch (e) { /* nothing stored */ }
  }

  function fresh (session) {
    return session && session.expiresAt - settings.renewBeforeSeconds * 1000 > now()
  }

  // --- one HTTP exchange --------------------------------------------------------------------

  function exchange (method, path, body, headers) {
    return new Promise((resolve, reject) => {
      wx.request({
        url: baseUrl + path,
        method,
        data: body === undefined ? undefined : JSON.stringify(body),
        header: Object.assign({ 'Content-Type': 'application/json' }, headers),
        dataType: 'json',
        timeout: settings.timeoutMs,
        success: res => resolve(res),
        fail: err => reject(new LoyaltyError('network_error', (err && err.errMsg) || 'request failed'))
      })
    })
  }

  function errorOf (res, idempotencyKey) {
    const data = typeof res.data === 'string' ? safeJson(res.data) : res.data
    const envelope = data && data.error
    const requestId = (envelope && envelope.request_id) || headerValue(res.header, 'X-Request-Id') || null
    if (envelope && envelope.code) {
      return new LoyaltyError(envelope.code, envelope.message, { status: res.statusCode, requestId, idempotencyKey, body: data })
    }
    // Not the service's envelope: the gateway's own answer (API Gateway and chalice local answer
    // a route they do not have with a 403 whose message can echo the Authorization header, token
    // and all) or a proxy's page. Neither its text nor its body is kept: errors get logged.
    const kind = headerValue(res.header, 'x-amzn-ErrorType')
    const message = 'HTTP ' + res.statusCode + (kind ? ' ' + String(kind).split(':')[0] : '') + ' (not from the service)'
    return new LoyaltyError('http_' + res.statusCode, message, { status: res.statusCode, requestId, idempotencyKey })
  }

  function safeJson (text) {
    try { return JSON.parse(text) } catch (e) { return null }
  }

  function backoff (attempt, res) {
    const retryAfter = Number(headerValue(res && res.header, 'Retry-After'))
    if (retryAfter > 0) return Math.min(settings.maxBackoffMs, retryAfter * 1000)
    const ceiling = Math.min(settings.maxBackoffMs, settings.backoffMs * Math.pow(2, attempt))
    return Math.round(ceiling / 2 + random() * ceiling / 2)
  }

  /**
   * One call, with 503 retry_later retried. The body (with its request_id) and the X-Request-Id
   * header are the same on every attempt.
   */
  async function send (method, path, body, headers, idempotencyKey) {
    const traced = Object.assign({ 'X-Request-Id': idempotencyKey || newRequestId('mpq') }, headers)
    for (let attempt = 0; ; attempt++) {
      let res
      try {
        res = await exchange(method, path, body, traced)
      } catch (error) {
        error.idempotencyKey = idempotencyKey || null // the outcome is unknown: repeat with this key
        throw error
      }
      if (res.statusCode >= 200 && res.statusCode < 300) return res.data
      const error = errorOf(res, idempotencyKey)
      if (error.status === 503 && error.code === 'retry_later' && attempt < settings.retries) {
        await sleep(backoff(attempt, res))
        continue
      }
      throw error
    }
  }

  // --- login and member calls ---------------------------------------------------------------

  async function doLogin () {
    let code
    try {
      code = (await call(wx, 'login', {})).code
    } catch (e) {
      throw new LoyaltyError('login_failed', (e && e.errMsg) || 'wx.login failed')
    }
    if (!code) throw new LoyaltyError('login_failed', 'wx.login gave no code')
    const answer = await send('POST', '/v1/auth/login', { appid: settings.appid, code })
    saveSession({
      token: answer.token,
      expiresAt: now() + answer.expires_in * 1000,
      enrolled: answer.enrolled,
      memberId: answer.member_id
    })
    return answer
  }

  /** Logs in (again): a fresh token whatever is stored. Concurrent callers share one login. */
  function login () {
    if (!loggingIn) {
      loggingIn = doLogin().finally(() => { loggingIn = null })
    }
    return loggingIn
  }

  async function token () {
    const session = loadSession()
    if (fresh(session)) return session.token
    await login()
    return loadSession().token
  }

  /** A member call: a token first; a 401 means a login again and one more try, no more. */
  async function member (method, path, body, idempotencyKey) {
    const first = await token()
    try {
      return await send(method, path, body, { Authorization: 'Bearer ' + first }, idempotencyKey)
    } catch (error) {
      if (error.status !== 401) throw error
      forgetSession()
      await login()
      const second = loadSession().token
      return send(method, path, body, { Authorization: 'Bearer ' + second }, idempotencyKey)
    }
  }

  /** The body with a request_id: the caller's, or a new one (the same on every retry). */
  function idempotent (body, prefix) {
    const requestId = body.request_id || newRequestId(prefix)
    return Object.assign({}, body, { request_id: requestId })
  }

  function memberIdempotent (method, path, body, prefix) {
    const sent = idempotent(body, prefix)
    return member(method, path, sent, sent.request_id)
  }

  // --- WeChat Pay ---------------------------------------------------------------------------

  async function pay (payParams) {
    if (!payParams) throw new LoyaltyError('payment_failed', 'no pay_params to pay with')
    try {
      return await call(wx, 'requestPayment', {
        timeStamp: payParams.timeStamp,
        nonceStr: payParams.nonceStr,
        package: payParams.package,
        signType: payParams.signType,
        paySign: payParams.paySign
      })
    } catch (e) {
      const message = (e && e.errMsg) || 'wx.requestPayment failed'
      throw new LoyaltyError(/cancel/i.test(message) ? 'payment_cancelled' : 'payment_failed', message)
    }
  }

  // --- the API, by the member's world -------------------------------------------------------

  return {
    login,
    /** Forgets the stored token; the next call logs in again. */
    logout: forgetSession,
    /** The stored session ({token, expiresAt, enrolled, memberId}) or null; no request. */
    session: loadSession,

    enroll: (profile) => member('POST', '/v1/members', profile || {}),
    card: () => member('GET', '/v1/members/me'),
    updateProfile: (changes) => member('PATCH', '/v1/members/me', changes),
    /** `code` is `e.detail.code` of `<button open-type="getPhoneNumber">`; none means refused. */
    bindPhone (code) {
      if (!code) return Promise.reject(new LoyaltyError('phone_denied', 'the member did not share a phone number'))
      return member('POST', '/v1/members/me/phone', { phone_code: code })
    },
    checkIn: () => member('POST', '/v1/members/me/checkin'),
    pointsHistory: (page) => member('GET', '/v1/members/me/points/history' + query(page)),
    tierHistory: (page) => member('GET', '/v1/members/me/tiers/history' + query(page)),

    rewards: (page) => member('GET', '/v1/rewards' + query(page)),
    redeem: (redemption) => memberIdempotent('POST', '/v1/members/me/redemptions',
      Object.assign({ quantity: 1 }, redemption), 'rd'),
    cancelRedemption: (redemptionId) =>
      member('POST', '/v1/members/me/redemptions/' + encodeURIComponent(redemptionId) + '/cancel'),

    /**
     * Asks the member with wx.requestSubscribeMessage, then gives the service one send credit per
     * accepted template. Resolves `{accepted, rejected, credits}` (credits null if none accepted).
     */
    async subscribe (templateIds) {
      let answer
      try {
        answer = await call(wx, 'requestSubscribeMessage', { tmplIds: templateIds })
      } catch (e) {
        throw new LoyaltyError('subscribe_failed', (e && e.errMsg) || 'wx.requestSubscribeMessage failed',
          { body: e || null })
      }
      const accepted = templateIds.filter(id => answer[id] === 'accept')
      const rejected = templateIds.filter(id => answer[id] !== 'accept')
      if (!accepted.length) return { accepted, rejected, credits: null }
      const result = await memberIdempotent('POST', '/v1/members/me/subscriptions', { template_ids: accepted }, 'sub')
      return { accepted, rejected, credits: result.credits }
    },

    // Coupons (API.md, second part).
    coupons: (filter) => member('GET', '/v1/members/me/coupons' + query(filter)),
    claimCoupon: (claim) => memberIdempotent('POST', '/v1/members/me/coupons', claim, 'cp'),

    // Stored value (API.md, second part): a top-up is paid with wx.requestPayment.
    topUpPlans: (page) => member('GET', '/v1/stored-value/plans' + query(page)),
    storedValueHistory: (page) => member('GET', '/v1/members/me/stored-value/history' + query(page)),
    /**
     * Creates the top-up and pays it. Resolves `{top_up_id, payment}` once WeChat Pay says paid;
     * the balance changes when the service hears from WeChat Pay (read the card again).
     */
    async topUp (order) {
      const created = await memberIdempotent('POST', '/v1/members/me/top-ups', order, 'tu')
      const payment = await pay(created.pay_params)
      return { top_up_id: created.top_up_id, payment }
    },

    // Paid membership (API.md, second part): a trial starts at once; a paid plan is paid first.
    membershipPlans: (page) => member('GET', '/v1/membership/plans' + query(page)),
    async joinMembership (order) {
      const created = await memberIdempotent('POST', '/v1/members/me/membership', order, 'ms')
      if (!created.pay_params) return created
      const payment = await pay(created.pay_params)
      return Object.assign({}, created, { payment })
    },

    /** Pays any `pay_params` the service handed out (wx.requestPayment). */
    pay,
    /** Any member call the helpers above do not cover yet. */
    request: (method, path, body, requestId) => member(method, path, body, requestId)
  }
}

module.exports = { createClient, LoyaltyError, newRequestId }
