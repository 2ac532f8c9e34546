// What a page shows for a LoyaltyError: the member's words for the codes they can meet, the
// code itself for the rest (and the request id, to quote to support).
const WORDS = {
  insufficient_points: '积分不足',
  out_of_stock: '已兑完',
  limit_reached: '已达领取上限',
  not_claimable: '该券不可领取',
  not_enrolled: '还不是会员',
  phone_in_use: '该手机号已绑定其他会员',
  phone_denied: '未授权手机号',
  invalid_phone_code: '手机号授权已失效，请重试',
  balance_cap: '储值余额已达上限',
  trial_used: '试用已使用过',
  payment_cancelled: '已取消支付',
  payment_failed: '支付失败',
  retry_later: '人有点多，请稍后再试',
  network_error: '网络不太好，请稍后再试'
}

function describe (error) {
  const code = (error && error.code) || 'unknown'
  return {
    code,
    message: WORDS[code] || (error && error.message) || '出错了',
    requestId: (error && error.requestId) || ''
  }
}

function toast (error) {
  wx.showToast({ title: describe(error).message, icon: 'none' })
}

module.exports = { describe, toast }
