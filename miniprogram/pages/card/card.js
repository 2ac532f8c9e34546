// The member card: enrol (nickname), bind the phone (getPhoneNumber), subscribe to messages.
const { describe, toast } = require('../../utils/errors.js')

Page({
  data: { loading: true, enrolled: false, card: null, nickname: '', error: null },

  onShow () {
    return this.load()
  },

  async load () {
    const { loyalty } = getApp()
    try {
      const card = await loyalty.card()
      this.setData({ loading: false, enrolled: true, card, error: null })
    } catch (error) {
      if (error.code === 'not_enrolled') this.setData({ loading: false, enrolled: false, card: null, error: null })
      else this.setData({ loading: false, error: describe(error) })
    }
  },

  onNickname (e) {
    this.setData({ nickname: e.detail.value })
  },

  async onEnrol () {
    const { loyalty } = getApp()
    try {
      const card = await loyalty.enroll(this.data.nickname ? { nickname: this.data.nickname } : {})
      this.setData({ enrolled: true, card, error: null })
      wx.showToast({ title: '欢迎入会', icon: 'success' })
    } catch (error) {
      toast(error)
    }
  },

  // <button open-type="getPhoneNumber">: e.detail.code, or none if the member refused.
  async onPhone (e) {
    const { loyalty } = getApp()
    try {
      const card = await loyalty.bindPhone(e.detail && e.detail.code)
      this.setData({ card })
      wx.showToast({ title: '已绑定', icon: 'success' })
    } catch (error) {
      toast(error)
    }
  },

  async onSubscribe () {
    const { loyalty, config } = getApp()
    try {
      const result = await loyalty.subscribe(config.templates)
      this.setData({ subscribed: result.accepted.length })
      wx.showToast({ title: result.accepted.length ? '已订阅' : '未订阅', icon: 'none' })
    } catch (error) {
      toast(error)
    }
  },

  onOpen (e) {
    wx.navigateTo({ url: e.currentTarget.dataset.url })
  }
})
