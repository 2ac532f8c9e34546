// The example mini-program: one loyalty client for every page, and WeChat's privacy
// authorization (wx.onNeedPrivacyAuthorization): when a page uses a privacy-protected ability
// (the phone button, the nickname input), WeChat asks us to show our own consent popup and waits
// until the member agrees (then the ability goes ahead) or refuses (it fails).
const { createClient } = require('./loyalty.js')
const config = require('./config.js')

App({
  onLaunch () {
    this.loyalty = createClient({ baseUrl: config.baseUrl, appid: config.appid })
    if (wx.onNeedPrivacyAuthorization) {
      wx.onNeedPrivacyAuthorization((resolve, eventInfo) => {
        this.privacy.pending = resolve
        this.privacy.reason = eventInfo && eventInfo.referrer
        this.privacy.popups.forEach(show => show())
      })
    }
  },

  // The popups (components/privacy-popup) on the pages that are open register here.
  privacy: {
    pending: null,
    reason: null,
    popups: new Set(),
    answer (agreed) {
      const resolve = this.pending
      this.pending = null
      // Agreeing must name the button with open-type="agreePrivacyAuthorization" the member tapped.
      if (resolve) resolve(agreed ? { buttonId: 'privacy-agree', event: 'agree' } : { event: 'disagree' })
    }
  },

  config
})
