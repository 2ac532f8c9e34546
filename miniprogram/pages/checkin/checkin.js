// Daily check-in: the first tap of the day awards, a second one says so and awards nothing.
const { describe, toast } = require('../../utils/errors.js')

Page({
  data: { result: null, checkin: null, error: null },

  async onShow () {
    try {
      const card = await getApp().loyalty.card()
      this.setData({ checkin: card.checkin, error: null })
    } catch (error) {
      this.setData({ error: describe(error) })
    }
  },

  async onCheckIn () {
    try {
      const result = await getApp().loyalty.checkIn()
      this.setData({ result })
      wx.showToast({ title: result.new ? `+${result.points_awarded} 积分` : '今天已签到', icon: 'none' })
    } catch (error) {
      toast(error)
    }
  }
})
