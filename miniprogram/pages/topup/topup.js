// Stored-value top-up: pick a plan, pay with WeChat Pay (wx.requestPayment with the service's
// pay_params), then read the balance again once the service has heard from WeChat Pay.
const { describe, toast } = require('../../utils/errors.js')

Page({
  data: { plans: [], history: [], balance: null, paying: '', error: null },

  async onShow () {
    const { loyalty } = getApp()
    try {
      const [plans, card, history] = await Promise.all([
        loyalty.topUpPlans(), loyalty.card(), loyalty.storedValueHistory({ limit: 20 })
      ])
      this.setData({
        plans: plans.items.map(p => Object.assign({}, p, { pay: p.pay_fen / 100, bonus: p.bonus_fen / 100 })),
        balance: card.stored_value_fen / 100,
        history: history.items,
        error: null
      })
    } catch (error) {
      this.setData({ error: describe(error) })
    }
  },

  async onTopUp (e) {
    const planId = e.currentTarget.dataset.plan
    if (this.data.paying) return
    this.setData({ paying: planId })
    try {
      await getApp().loyalty.topUp({ plan_id: planId })
      wx.showToast({ title: '支付成功', icon: 'success' })
      await this.onShow()
    } catch (error) {
      toast(error)
    } finally {
      this.setData({ paying: '' })
    }
  }
})
