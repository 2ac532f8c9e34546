// Rewards to redeem with points. A redemption carries a request id, so a retried tap never
// spends twice.
const { describe, toast } = require('../../utils/errors.js')

Page({
  data: { rewards: [], available: null, error: null, redeeming: '' },

  async onShow () {
    const { loyalty } = getApp()
    try {
      const [page, card] = await Promise.all([loyalty.rewards({ limit: 100 }), loyalty.card()])
      this.setData({ rewards: page.items, available: card.points.available, error: null })
    } catch (error) {
      this.setData({ error: describe(error) })
    }
  },

  async onRedeem (e) {
    const rewardId = e.currentTarget.dataset.id
    if (this.data.redeeming) return
    this.setData({ redeeming: rewardId })
    try {
      const redemption = await getApp().loyalty.redeem({ reward_id: rewardId, quantity: 1 })
      this.setData({ available: redemption.points_balance, lastRedemption: redemption.redemption_id })
      wx.showToast({ title: '兑换成功', icon: 'success' })
    } catch (error) {
      toast(error)
    } finally {
      this.setData({ redeeming: '' })
    }
  }
})
