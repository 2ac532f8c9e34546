// The example pages, run as the mini-program runtime would run them (support/miniprogram.mjs),
// against the local stack: what each page shows after its handlers ran, the privacy consent
// flow, and the files' consistency (every page complete, every bound handler defined).

import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startStack } from '../lib/stack.mjs'
import { fakeWx } from './support/fake-wx.mjs'
import { MINIPROGRAM, freshPhone, masked, require as kitRequire, shanghaiNow } from './support/kit.mjs'
import { appJson, file, launch } from './support/miniprogram.mjs'
import { till } from './support/till.mjs'

let stack
before(async () => { stack = await startStack() })
after(() => stack && stack.stop())

const toasts = wx => wx.calls.filter(c => c.name === 'showToast').map(c => c.options.title)

describe('the files', () => {
  const pages = appJson().pages
  const components = Object.values(appJson().usingComponents).map(path => path.replace(/^\//, ''))

  it('app.json lists the card, history, rewards, coupons, check-in and top-up pages, each complete', () => {
    assert.deepEqual(pages.map(p => p.split('/')[1]), ['card', 'history', 'rewards', 'coupons', 'checkin', 'topup'])
    for (const page of [...pages, ...components]) {
      for (const ext of ['js', 'json', 'wxml', 'wxss']) {
        assert.ok(existsSync(join(MINIPROGRAM, `${page}.${ext}`)), `${page}.${ext}`)
      }
      JSON.parse(file(`${page}.json`))
    }
    assert.equal(appJson().__usePrivacyCheck__, true)
  })

  it('every handler a WXML file binds is defined by its page or component, and the tags balance', () => {
    for (const page of [...pages, ...components]) {
      const wxml = file(`${page}.wxml`)
      const { open, attach } = launch({ api: 'http://127.0.0.1:9', wx: fakeWx({ openid: 'files' }) })
      const instance = page.startsWith('components/') ? attach(page) : open(page)
      for (const [, handler] of wxml.matchAll(/\b(?:bind|catch)[a-z]+="([A-Za-z]+)"/g)) {
        assert.equal(typeof instance[handler], 'function', `${page}.wxml binds ${handler}`)
      }
      const stack = []
      for (const [, closing, name, selfClosing] of wxml.matchAll(/<(\/?)([a-z-]+)[^>]*?(\/?)>/g)) {
        if (selfClosing || name === 'input') continue
        if (!closing) stack.push(name)
        else assert.equal(stack.pop(), name, `${page}.wxml: </${name}> closes something else`)
      }
      assert.deepEqual(stack, [], `${page}.wxml leaves ${stack} open`)
    }
  })
})

describe('privacy authorization', () => {
  it('shows the popup when WeChat asks, and answers with the agree button it names', () => {
    const wx = fakeWx({ openid: 'privacy' })
    const { app, attach } = launch({ api: stack.api, wx })
    assert.equal(typeof wx.privacyListener, 'function', 'app.js listens with wx.onNeedPrivacyAuthorization')
    const popup = attach('components/privacy-popup/index')
    assert.equal(popup.data.show, false)
    assert.equal(popup.data.contractName, '《示例隐私保护指引》')

    const answers = []
    wx.privacyListener(answer => answers.push(answer), { referrer: 'getPhoneNumber' })
    assert.equal(popup.data.show, true)
    popup.onOpenContract()
    assert.ok(wx.calls.some(c => c.name === 'openPrivacyContract'))
    popup.onAgree()
    assert.deepEqual(answers, [{ buttonId: 'privacy-agree', event: 'agree' }])
    assert.equal(popup.data.show, false)
    assert.match(file('components/privacy-popup/index.wxml'),
      /<button id="privacy-agree"[^>]*open-type="agreePrivacyAuthorization"[^>]*bindagreeprivacyauthorization="onAgree"/)

    wx.privacyListener(answer => answers.push(answer), { referrer: 'nickname' })
    popup.onDisagree()
    assert.deepEqual(answers[1], { event: 'disagree' })
    popup.detach()
    assert.equal(app.privacy.popups.size, 0)
  })

  it('a popup attached while WeChat is waiting shows at once', () => {
    const wx = fakeWx({ openid: 'privacy-late' })
    const { attach } = launch({ api: stack.api, wx })
    wx.privacyListener(() => {}, {})
    assert.equal(attach('components/privacy-popup/index').data.show, true)
  })
})

describe('the pages against the local stack', () => {
  const wx = fakeWx({ openid: `kit-pages-${process.pid}-${Date.now()}` })
  let mp, memberId

  before(() => { mp = launch({ api: stack.api, wx }) })

  it('card: enrol with a nickname, refuse then bind the phone, subscribe', async () => {
    const card = mp.open('pages/card/card')
    await card.onShow()
    assert.equal(card.data.enrolled, false)
    assert.equal(card.data.error, null)
    card.onNickname({ detail: { value: '页面' } })
    await card.onEnrol()
    assert.equal(card.data.card.nickname, '页面')
    memberId = card.data.card.member_id

    await card.onPhone({ detail: { errMsg: 'getPhoneNumber:fail user deny' } })
    assert.equal(toasts(wx).at(-1), '未授权手机号')
    const phone = freshPhone()
    await card.onPhone({ detail: { code: `phone-${phone}`, errMsg: 'getPhoneNumber:ok' } })
    assert.equal(card.data.card.phone, masked(phone))

    await card.onSubscribe()
    assert.equal(card.data.subscribed, 3)
    card.onOpen({ currentTarget: { dataset: { url: '/pages/history/history' } } })
    assert.equal(wx.calls.at(-1).options.url, '/pages/history/history')
  })

  it('rewards: shows the balance and redeems', async () => {
    const order = await till(stack.api, 'POST', '/v1/orders', {
      order_id: `kit-pages-${memberId}`, member_id: memberId, amount_fen: 30_000, paid_at: shanghaiNow()
    })
    assert.equal(order.status, 201)
    const rewards = mp.open('pages/rewards/rewards')
    await rewards.onShow()
    assert.equal(rewards.data.available, 300)
    assert.ok(rewards.data.rewards.some(r => r.reward_id === 'demo-cup'))
    await rewards.onRedeem({ currentTarget: { dataset: { id: 'demo-cup' } } })
    assert.equal(rewards.data.available, 200)
    assert.equal(rewards.data.redeeming, '')
    assert.equal(toasts(wx).at(-1), '兑换成功')
  })

  it('history: newest first, with labels', async () => {
    const history = mp.open('pages/history/history')
    await history.onLoad()
    assert.deepEqual(history.data.items.map(i => [i.label, i.sign + i.points]), [['兑换', '-100'], ['消费获得', '+300']])
    assert.equal(history.data.done, true)
    await history.onReachBottom() // nothing more to load
    assert.equal(history.data.items.length, 2)
  })

  it('check-in: once a day', async () => {
    const checkin = mp.open('pages/checkin/checkin')
    await checkin.onShow()
    assert.equal(checkin.data.error, null)
    await checkin.onCheckIn()
    assert.equal(checkin.data.result.new, true)
    await checkin.onCheckIn()
    assert.equal(toasts(wx).at(-1), '今天已签到')
  })

  it('coupons and top-up: the error with its code until the service serves them', async () => {
    const coupons = mp.open('pages/coupons/coupons')
    await coupons.onShow()
    const topup = mp.open('pages/topup/topup')
    await topup.onShow()
    const paths = (await (await fetch(`${stack.api}/openapi.json`)).json()).paths
    if (!paths['/v1/members/me/coupons']) {
      assert.match(coupons.data.error.code, /^http_40[34]$/)
      await coupons.onClaim({ currentTarget: { dataset: { template: 'demo-10off' } } })
      assert.match(toasts(wx).at(-1), /^HTTP 40[34]/)
    } else {
      assert.equal(coupons.data.error, null)
    }
    if (!paths['/v1/members/me/top-ups']) {
      assert.match(topup.data.error.code, /^http_40[34]$/)
      await topup.onTopUp({ currentTarget: { dataset: { plan: 'sv-100' } } })
      assert.equal(wx.calls.filter(c => c.name === 'requestPayment').length, 0)
      assert.equal(topup.data.paying, '')
    } else {
      assert.equal(topup.data.error, null)
    }
  })
})

describe("the README's ten-line example", () => {
  it('runs as a page against the local stack', async () => {
    const readme = readFileSync(join(MINIPROGRAM, '..', 'README.md'), 'utf8')
    const source = readme.match(/```js\n([\s\S]*?)```/)[1]
    assert.ok(source.trim().split('\n').length <= 10, 'ten lines')
    const wx = fakeWx({ openid: `kit-readme-${process.pid}-${Date.now()}` })
    let page
    const run = new Function('require', 'Page', 'wx', source.replace(
      "baseUrl: 'https://api.example.com', appid: 'wx0123456789abcdef'",
      `baseUrl: ${JSON.stringify(stack.api)}, appid: 'wxdemo0000000000', wx`))
    run(kitRequire, definition => { page = { ...definition, data: {}, setData (d) { Object.assign(this.data, d) } } }, wx)
    await page.onShow()
    assert.deepEqual(page.data, { points: 0, tier: '普通' })
    const phone = freshPhone()
    assert.equal((await page.onPhone({ detail: { code: `phone-${phone}` } })).phone, masked(phone))
    await page.redeem()
    assert.deepEqual(wx.calls.at(-1), { name: 'showToast', options: { title: 'insufficient_points', icon: 'none' } })
  })
})
