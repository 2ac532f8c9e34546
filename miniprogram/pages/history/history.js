// Points history, newest first, a page at a time (pull to refresh, scroll for more).
const { describe } = require('../../utils/errors.js')

const LABELS = { earn: '消费获得', redeem: '兑换', hold: '抵扣冻结', release: '冻结退回', expire: '过期', reverse: '退款扣回', adjust: '调整' }

Page({
  data: { items: [], cursor: null, done: false, loading: false, error: null },

  onLoad () {
    return this.more(true)
  },

  onPullDownRefresh () {
    return this.more(true).then(() => wx.stopPullDownRefresh())
  },

  onReachBottom () {
    return this.more(false)
  },

  async more (fromStart) {
    if (this.data.loading || (!fromStart && this.data.done)) return
    this.setData({ loading: true })
    try {
      const page = await getApp().loyalty.pointsHistory({ limit: 20, cursor: fromStart ? null : this.data.cursor })
      const items = page.items.map(entry => Object.assign({}, entry, {
        label: LABELS[entry.type] || entry.type,
        sign: entry.points > 0 ? '+' : '',
        day: entry.created_at.slice(0, 10)
      }))
      this.setData({
        items: fromStart ? items : this.data.items.concat(items),
        cursor: page.next_cursor,
        done: page.next_cursor === null,
        loading: false,
        error: null
      })
    } catch (error) {
      this.setData({ loading: false, error: describe(error) })
    }
  }
})
