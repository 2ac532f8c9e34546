// Where the service is, and the mini-program's own ids. The values are the local stack's
// (`make run`); a merchant's build puts its own here. The API's domain must be on the
// mini-program's request allow-list (mp.weixin.qq.com: 开发管理 → 服务器域名).
module.exports = {
  baseUrl: 'http://127.0.0.1:8000',
  appid: 'wxdemo0000000000',
  // Subscribe-message templates the service sends (tier changed, points changed, expiring).
  templates: ['tmpl-points', 'tmpl-tier', 'tmpl-expiring']
}
