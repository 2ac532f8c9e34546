// The privacy consent popup WeChat asks for (app.js: wx.onNeedPrivacyAuthorization). Put
// <privacy-popup /> on every page that uses a privacy-protected ability; it shows itself when
// WeChat is waiting for the member's answer.
Component({
  data: { show: false, contractName: '《隐私保护指引》' },

  lifetimes: {
    attached () {
      const privacy = getApp().privacy
      this.showPopup = () => this.setData({ show: true })
      privacy.popups.add(this.showPopup)
      if (privacy.pending) this.showPopup()
      if (wx.getPrivacySetting) {
        wx.getPrivacySetting({
          success: res => { if (res.privacyContractName) this.setData({ contractName: res.privacyContractName }) }
        })
      }
    },
    detached () {
      getApp().privacy.popups.delete(this.showPopup)
    }
  },

  methods: {
    onOpenContract () {
      wx.openPrivacyContract({})
    },
    // The tap on <button id="privacy-agree" open-type="agreePrivacyAuthorization">.
    onAgree () {
      getApp().privacy.answer(true)
      this.setData({ show: false })
    },
    onDisagree () {
      getApp().privacy.answer(false)
      this.setData({ show: false })
    }
  }
})
