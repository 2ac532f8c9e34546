// A `wx` for Node: the mini-program APIs the kit uses, with wx.request forwarded over real HTTP
// (to the local stack) and the WeChat-side answers (login codes, the member's choices) scripted.
// Codes follow the local stack's WeChat stand-in: `dev-<openid>` logs in as that openid.

export function fakeWx ({ openid, subscribeChoices = {}, payment = 'ok', phone } = {}) {
  const storage = new Map()
  const calls = []
  const record = (name, options) => calls.push({ name, options: strip(options) })

  const wx = {
    calls,
    storage,
    openid,
    requests: [],
    setStorageSync (key, value) { storage.set(key, structuredClone(value)) },
    getStorageSync (key) { return storage.has(key) ? structuredClone(storage.get(key)) : '' },
    removeStorageSync (key) { storage.delete(key) },

    login (options) {
      record('login', options)
      setTimeout(() => options.success({ code: `dev-${wx.openid}`, errMsg: 'login:ok' }))
    },

    request (options) {
      const { url, method = 'GET', data, header = {} } = options
      wx.requests.push({ method, url, data, header: { ...header } })
      fetch(url, { method, headers: header, body: data === undefined ? undefined : data })
        .then(async answer => {
          const text = await answer.text()
          let body = text
          if (options.dataType === 'json') { try { body = JSON.parse(text) } catch {} }
          options.success({ statusCode: answer.status, data: body, header: Object.fromEntries(answer.headers), errMsg: 'request:ok' })
        })
        .catch(error => options.fail({ errMsg: `request:fail ${error.message}` }))
    },

    requestSubscribeMessage (options) {
      record('requestSubscribeMessage', options)
      const answer = { errMsg: 'requestSubscribeMessage:ok' }
      for (const id of options.tmplIds) answer[id] = subscribeChoices[id] || 'accept'
      setTimeout(() => options.success(answer))
    },

    requestPayment (options) {
      record('requestPayment', options)
      if (payment === 'ok') setTimeout(() => options.success({ errMsg: 'requestPayment:ok' }))
      else setTimeout(() => options.fail({ errMsg: `requestPayment:fail ${payment}` }))
    },

    // What the example pages call besides the client.
    showToast (options) { record('showToast', options) },
    showModal (options) { record('showModal', options); options && options.success && options.success({ confirm: true }) },
    navigateTo (options) { record('navigateTo', options) },
    stopPullDownRefresh () { record('stopPullDownRefresh') },
    openPrivacyContract (options) { record('openPrivacyContract', options); options && options.success && options.success({}) },
    getPrivacySetting (options) { record('getPrivacySetting', options); options.success({ needAuthorization: true, privacyContractName: '《示例隐私保护指引》' }) },
    onNeedPrivacyAuthorization (listener) { record('onNeedPrivacyAuthorization'); wx.privacyListener = listener }
  }
  if (phone) wx.phone = phone
  return wx
}

function strip (options) {
  if (!options) return options
  const { success, fail, complete, ...rest } = options
  return rest
}

/** A wx whose requests get scripted answers, no network: `answers` is a list of
 * {statusCode, data, header} (or a function of the request) served in order. */
export function scriptedWx (answers, { openid = 'scripted' } = {}) {
  const wx = fakeWx({ openid })
  const queue = [...answers]
  wx.request = options => {
    const sent = { method: options.method, url: options.url, data: options.data, header: { ...options.header } }
    wx.requests.push(sent)
    const next = queue.shift()
    if (next === undefined) throw new Error(`no scripted answer for ${options.method} ${options.url}`)
    setTimeout(() => {
      const answer = typeof next === 'function' ? next(sent) : next
      if (answer === 'network') options.fail({ errMsg: 'request:fail timeout' })
      else options.success({ header: {}, ...answer })
    })
  }
  wx.remaining = () => queue.length
  return wx
}
