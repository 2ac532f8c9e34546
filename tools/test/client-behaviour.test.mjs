// What the client does with each kind of answer, with wx.request scripted (no network): which
// failures it retries and how long it waits, what it sends again, when it logs in again.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scriptedWx } from './support/fake-wx.mjs'
import { createClient, newRequestId, rejection } from './support/kit.mjs'

const BASE = 'https://loyalty.example'
const LOGIN = { statusCode: 200, data: { token: 'tok-1', expires_in: 7200, enrolled: true, member_id: 'm1' } }
const envelope = (statusCode, code, extra = {}) => ({
  statusCode, data: { error: { code, message: `${code} happened`, request_id: `srv-${code}` } }, ...extra
})
const redeemed = { statusCode: 201, data: { redemption_id: 'rd-x', points_balance: 1 } }

function client (answers, options = {}) {
  const wx = scriptedWx(answers)
  const sleeps = []
  const loyalty = createClient({
    baseUrl: BASE + '/', appid: 'wxapp', wx, random: () => 0.5, sleep: async ms => { sleeps.push(ms) }, ...options
  })
  return { wx, loyalty, sleeps }
}

const paths = wx => wx.requests.map(r => `${r.method} ${r.url.replace(BASE, '')}`)

describe('retries', () => {
  it('retries a 503 retry_later with growing back-off, sending the same request id every time', async () => {
    const { wx, loyalty, sleeps } = client([LOGIN, envelope(503, 'retry_later'), envelope(503, 'retry_later'), redeemed])
    const answer = await loyalty.redeem({ reward_id: 'demo-cup' })
    assert.equal(answer.redemption_id, 'rd-x')
    const attempts = wx.requests.slice(1)
    assert.equal(attempts.length, 3)
    const bodies = attempts.map(r => JSON.parse(r.data))
    assert.match(bodies[0].request_id, /^rd-/)
    assert.ok(bodies.every(b => b.request_id === bodies[0].request_id && b.quantity === 1))
    assert.ok(attempts.every(r => r.header['X-Request-Id'] === bodies[0].request_id))
    assert.deepEqual(sleeps, [225, 450]) // 300 ms doubling, jitter between half and all of it
  })

  it('gives up after the configured retries with the retry_later error', async () => {
    const { wx, loyalty, sleeps } = client([LOGIN, ...Array(3).fill(envelope(503, 'retry_later'))], { retries: 2, backoffMs: 1000, maxBackoffMs: 1500 })
    const error = await rejection(loyalty.card())
    assert.equal(error.code, 'retry_later')
    assert.equal(error.status, 503)
    assert.equal(wx.requests.length, 4)
    assert.deepEqual(sleeps, [750, 1125]) // the second capped at maxBackoffMs before jitter
  })

  it('waits as long as Retry-After says (capped)', async () => {
    const { loyalty, sleeps } = client([LOGIN, envelope(503, 'retry_later', { header: { 'retry-after': '2' } }), { statusCode: 200, data: {} }])
    await loyalty.card()
    assert.deepEqual(sleeps, [2000])
  })

  for (const [name, answer] of [
    ['a 503 with another code', envelope(503, 'unavailable')],
    ['a 500', envelope(500, 'internal_error')],
    ['a 429 rate_limited', envelope(429, 'rate_limited')],
    ['a 409', envelope(409, 'insufficient_points')],
    ['a 502 from a proxy, not JSON', { statusCode: 502, data: '<html>Bad Gateway</html>' }]
  ]) {
    it(`does not retry ${name}`, async () => {
      const { wx, loyalty, sleeps } = client([LOGIN, answer])
      const error = await rejection(loyalty.redeem({ reward_id: 'demo-cup' }))
      assert.equal(wx.requests.length, 2)
      assert.deepEqual(sleeps, [])
      assert.equal(error.status, answer.statusCode)
      assert.equal(error.code, answer.data.error ? answer.data.error.code : 'http_502')
      assert.match(error.idempotencyKey, /^rd-/)
    })
  }

  it('does not repeat a request whose outcome is unknown (network failure), and says which key to repeat', async () => {
    const { wx, loyalty } = client([LOGIN, 'network', redeemed])
    const error = await rejection(loyalty.redeem({ reward_id: 'demo-cup' }))
    assert.equal(error.code, 'network_error')
    assert.equal(wx.requests.length, 2)
    const firstKey = JSON.parse(wx.requests[1].data).request_id
    assert.equal(error.idempotencyKey, firstKey)
    await loyalty.redeem({ reward_id: 'demo-cup', request_id: error.idempotencyKey })
    assert.equal(JSON.parse(wx.requests[2].data).request_id, firstKey)
  })
})

describe('errors', () => {
  it('carries the envelope: code, message, status, the server request id', async () => {
    const { loyalty } = client([LOGIN, envelope(404, 'not_enrolled')])
    const error = await rejection(loyalty.card())
    assert.equal(error.name, 'LoyaltyError')
    assert.equal(error.code, 'not_enrolled')
    assert.equal(error.message, 'not_enrolled happened')
    assert.equal(error.status, 404)
    assert.equal(error.requestId, 'srv-not_enrolled')
  })

  it('keeps nothing of a gateway answer that is not the envelope (it may echo the token)', async () => {
    const echo = { statusCode: 403, data: { message: 'Authorization=Bearer tok-1' }, header: { 'x-amzn-ErrorType': 'IncompleteSignatureException' } }
    const { loyalty } = client([LOGIN, echo])
    const error = await rejection(loyalty.coupons())
    assert.equal(error.code, 'http_403')
    assert.equal(error.message, 'HTTP 403 IncompleteSignatureException (not from the service)')
    assert.equal(error.body, null)
  })
})

describe('tokens', () => {
  it('logs in once, stores the token and sends it as a bearer', async () => {
    const { wx, loyalty } = client([LOGIN, { statusCode: 200, data: { member_id: 'm1' } }, { statusCode: 200, data: {} }])
    await loyalty.card()
    await loyalty.pointsHistory({ limit: 5, cursor: 'a b' })
    assert.deepEqual(paths(wx), ['POST /v1/auth/login', 'GET /v1/members/me', 'GET /v1/members/me/points/history?limit=5&cursor=a%20b'])
    assert.equal(wx.requests[0].header.Authorization, undefined)
    assert.deepEqual(JSON.parse(wx.requests[0].data), { appid: 'wxapp', code: 'dev-scripted' })
    assert.ok(wx.requests.slice(1).every(r => r.header.Authorization === 'Bearer tok-1'))
    assert.equal(wx.getStorageSync('loyalty.session').memberId, 'm1')
  })

  it('on a 401 logs in again once and repeats the call with the new token', async () => {
    const relogin = { statusCode: 200, data: { ...LOGIN.data, token: 'tok-2' } }
    const { wx, loyalty } = client([LOGIN, envelope(401, 'token_expired'), relogin, redeemed])
    await loyalty.redeem({ reward_id: 'demo-cup' })
    assert.deepEqual(paths(wx), ['POST /v1/auth/login', 'POST /v1/members/me/redemptions', 'POST /v1/auth/login', 'POST /v1/members/me/redemptions'])
    assert.equal(wx.requests[3].header.Authorization, 'Bearer tok-2')
    assert.equal(wx.requests[1].data, wx.requests[3].data, 'the same request id again')
  })

  it('does not loop: a second 401 is the error', async () => {
    const { wx, loyalty } = client([LOGIN, envelope(401, 'token_expired'), LOGIN, envelope(401, 'unauthorized')])
    const error = await rejection(loyalty.card())
    assert.equal(error.code, 'unauthorized')
    assert.equal(wx.requests.length, 4)
  })

  it('shares one login between calls made together', async () => {
    const { wx, loyalty } = client([LOGIN, { statusCode: 200, data: { a: 1 } }, { statusCode: 200, data: { b: 2 } }])
    await Promise.all([loyalty.card(), loyalty.rewards()])
    assert.equal(wx.calls.filter(c => c.name === 'login').length, 1)
    assert.equal(wx.remaining(), 0)
  })

  it('keeps working when storage refuses the session', async () => {
    const { wx, loyalty } = client([LOGIN, { statusCode: 200, data: {} }, { statusCode: 200, data: {} }])
    wx.setStorageSync = () => { throw new Error('storage full') }
    await loyalty.card()
    await loyalty.card()
    assert.equal(wx.calls.filter(c => c.name === 'login').length, 1)
  })
})

describe('WeChat Pay and consent', () => {
  const payParams = { appId: 'wxapp', timeStamp: '1700000000', nonceStr: 'n0nce', package: 'prepay_id=wx1', signType: 'RSA', paySign: 'c2ln' }

  it("pays a top-up's pay_params with wx.requestPayment", async () => {
    const { wx, loyalty } = client([LOGIN, { statusCode: 201, data: { top_up_id: 'tu-1', pay_params: payParams } }])
    const result = await loyalty.topUp({ plan_id: 'sv-100' })
    assert.equal(result.top_up_id, 'tu-1')
    const { appId, ...expected } = payParams
    assert.deepEqual(wx.calls.find(c => c.name === 'requestPayment').options, expected)
    assert.match(JSON.parse(wx.requests[1].data).request_id, /^tu-/)
  })

  it('tells a cancelled payment from a failed one', async () => {
    const { wx, loyalty } = client([LOGIN, { statusCode: 201, data: { order_id: 'ms-1', pay_params: payParams } }])
    wx.requestPayment = options => setTimeout(() => options.fail({ errMsg: 'requestPayment:fail cancel' }))
    const cancelled = await rejection(loyalty.joinMembership({ plan_id: 'svip-month' }))
    assert.equal(cancelled.code, 'payment_cancelled')
    wx.requestPayment = options => setTimeout(() => options.fail({ errMsg: 'requestPayment:fail no network' }))
    assert.equal((await rejection(loyalty.pay(payParams))).code, 'payment_failed')
  })

  it('starts a trial membership without asking to pay', async () => {
    const trial = { statusCode: 201, data: { membership: { plan_id: 'svip-trial', until: '2026-12-07' } } }
    const { wx, loyalty } = client([LOGIN, trial])
    assert.deepEqual(await loyalty.joinMembership({ plan_id: 'svip-trial' }), trial.data)
    assert.equal(wx.calls.filter(c => c.name === 'requestPayment').length, 0)
  })

  it('sends nothing when the member accepts no template', async () => {
    const { wx, loyalty } = client([])
    wx.requestSubscribeMessage = options => setTimeout(() => options.success({ errMsg: 'ok', 'tmpl-a': 'reject', 'tmpl-b': 'ban' }))
    assert.deepEqual(await loyalty.subscribe(['tmpl-a', 'tmpl-b']), { accepted: [], rejected: ['tmpl-a', 'tmpl-b'], credits: null })
    assert.equal(wx.requests.length, 0)
  })

  it('surfaces a refused consent dialog as subscribe_failed', async () => {
    const { wx, loyalty } = client([])
    wx.requestSubscribeMessage = options => setTimeout(() => options.fail({ errMsg: 'requestSubscribeMessage:fail', errCode: 20004 }))
    const error = await rejection(loyalty.subscribe(['tmpl-a']))
    assert.equal(error.code, 'subscribe_failed')
    assert.equal(error.body.errCode, 20004)
  })
})

describe('request ids', () => {
  it('fit the contract (1-64 of [A-Za-z0-9._:-]) and do not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newRequestId('rd')))
    assert.equal(ids.size, 10_000)
    for (const id of ids) assert.match(id, /^[A-Za-z0-9._:-]{1,64}$/)
  })
})
