// The member's coupons by status, and claiming one (API.md, second part: coupon templates are
// claimable when the merchant says so).
const { describe, toast } = require('../../utils/errors.js')

const TABS = [{ status: 'unused', name: '未使用' }, { status: 'used', name: '已使用' }, { status: 'expired', name: '已过期' }]

Page({
  data: { tabs: TABS, status: 'unused', coupons: [], cursor: null, error: null },

  onShow () {
    return this.load()
  },

  onTab (e) {
    this.setData({ status: e.currentTarget.dataset.status })
    return this.load()
  },

  async load () {
    try {
      const page = await getApp().loyalty.coupons({ status: this.data.status, limit: 50 })
      this.setData({ coupons: page.items, cursor: page.next_cursor, error: null })
    } catch (error) {
      this.setData({ coupons: [], error: describe(error) })
    }
  },

  // A claim button for a template the merchant promotes (data-template="demo-10off").
  async onClaim (e) {
    try {
      await getApp().loyalty.claimCoupon({ template_id: e.currentTarget.dataset.template })
      wx.showToast({ title: '领取成功', icon: 'success' })
      await this.load()
    } catch (error) {
      toast(error)
    }
  }
})
