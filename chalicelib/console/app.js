// The merchant console: one page, hash routes, the API of this origin with a staff token.
// The token lives in this tab's sessionStorage (this origin only; never a cookie).
import { buildForm, clearErrors, el, readForm, showErrors } from './forms.js'

const API = new URL('.', document.baseURI) // the API's root (behind API Gateway: its stage prefix)
const main = document.getElementById('main')
const nav = document.getElementById('nav')
const SESSION = 'loyalty-console'
window.consoleCharts = {} // the dashboard's ECharts instances (the browser tests read their data)

const session = () => JSON.parse(sessionStorage.getItem(SESSION) || 'null')

class ApiError extends Error {
  constructor (status, error) {
    super(error?.message || `HTTP ${status}`)
    this.status = status
    this.code = error?.code
    this.fields = error?.fields || []
  }
}

async function api (method, path, body) {
  const headers = { Accept: 'application/json' }
  const current = session()
  if (current) headers.Authorization = `Bearer ${current.token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const response = await fetch(new URL(path.replace(/^\//, ''), API), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit',
  })
  const data = response.headers.get('Content-Type')?.includes('json') ? await response.json() : null
  if (response.status === 401 && current && !path.endsWith('/auth/login')) {
    sessionStorage.removeItem(SESSION)
    location.hash = '#/login'
  }
  if (!response.ok) throw new ApiError(response.status, data?.error)
  return data
}

const requestId = (prefix) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
const fen = (value) => (value / 100).toFixed(2)
const today = () => new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10) // Asia/Shanghai
const daysAgo = (n) => new Date(Date.now() + 8 * 3600e3 - n * 86400e3).toISOString().slice(0, 10)

function message (text, kind = 'error') {
  return el('p', { class: kind, role: kind === 'error' ? 'alert' : 'status', text })
}

function table (columns, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, ...columns.map(([title]) => el('th', { text: title })))),
    el('tbody', {}, ...rows.map((row) => el('tr', {}, ...columns.map(([, cell]) => {
      const value = cell(row)
      return el('td', {}, value instanceof Node ? value : document.createTextNode(value ?? '')
      )
    })))))
}

// --- pages ------------------------------------------------------------------------------------

// [hash, title, roles that see it]; the server checks every call whatever the page shows.
const PAGES = [
  ['dashboard', '概览', ['owner', 'manager']],
  ['members', '会员', ['owner', 'manager', 'clerk']],
  ['rules', '积分规则', ['owner', 'manager']],
  ['tiers', '等级', ['owner', 'manager']],
  ['rewards', '奖品', ['owner', 'manager']],
  ['coupons', '优惠券', ['owner', 'manager']],
  ['lottery', '抽奖', ['owner', 'manager']],
  ['stored-value', '储值套餐', ['owner', 'manager']],
  ['membership', '付费会员', ['owner', 'manager']],
  ['jobs', '任务', ['owner', 'manager']],
  ['audit', '审计', ['owner']],
  ['staff', '员工', ['owner']],
]

function renderNav (current) {
  const role = session()?.role
  nav.replaceChildren(...PAGES.filter(([, , roles]) => roles.includes(role)).map(([hash, title]) =>
    el('a', { href: `#/${hash}`, id: `nav-${hash}`, class: hash === current ? 'active' : undefined, text: title })))
  nav.hidden = false
  document.getElementById('who').textContent = `${session().username} (${{ owner: '店主', manager: '店长', clerk: '店员' }[role]})`
  document.getElementById('logout').hidden = false
}

function loginPage () {
  nav.hidden = true
  document.getElementById('logout').hidden = true
  document.getElementById('who').textContent = ''
  const status = el('div')
  const form = el('form', { id: 'login-form' },
    el('label', {}, el('span', { class: 'name', text: '商户 (program)' }), el('input', { name: 'program_id', value: 'demo', required: true })),
    el('label', {}, el('span', { class: 'name', text: '用户名' }), el('input', { name: 'username', required: true, autocomplete: 'username' })),
    el('label', {}, el('span', { class: 'name', text: '密码' }), el('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' })),
    el('button', { type: 'submit', text: '登录' }), status)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const data = Object.fromEntries(new FormData(form))
    try {
      const answer = await api('POST', '/v1/admin/auth/login', data)
      sessionStorage.setItem(SESSION, JSON.stringify({ token: answer.token, role: answer.role, username: data.username }))
      location.hash = answer.role === 'clerk' ? '#/members' : '#/dashboard'
    } catch (error) {
      status.replaceChildren(message(error.code === 'login_locked' ? `账号已锁定：${error.message}` : '用户名或密码错误'))
    }
  })
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '员工登录' }), form))
}

// 概览: the daily report as charts, for a range of days.
async function dashboardPage () {
  const from = el('input', { type: 'date', id: 'from', value: daysAgo(13) })
  const to = el('input', { type: 'date', id: 'to', value: today() })
  const status = el('div')
  const charts = el('div', { class: 'charts' })
  const SPECS = [
    ['members', '新增 / 活跃会员', 'line', [['new_members', '新增会员'], ['active_members', '活跃会员']]],
    ['points', '积分：发放 / 兑换 / 过期', 'bar', [['points_issued', '发放'], ['points_redeemed', '兑换'], ['points_expired', '过期']]],
    ['liability', '负债（元）：积分 / 储值', 'line', [['points_liability_fen', '积分负债', fen], ['stored_value_liability_fen', '储值负债', fen]]],
    ['coupons', '优惠券：发放 / 使用', 'bar', [['coupons_issued', '发放'], ['coupons_used', '使用']]],
    ['sales', '销售额（元）/ 订单数', 'bar', [['sales_fen', '销售额', fen], ['orders', '订单数']]],
    ['outstanding', '未用积分', 'line', [['points_outstanding', '未用积分']]],
  ]
  async function draw () {
    status.replaceChildren()
    let report
    try {
      report = await api('GET', `/v1/admin/reports/daily?from=${from.value}&to=${to.value}`)
    } catch (error) {
      status.replaceChildren(message(error.status === 404 ? '日报接口尚未启用' : `加载失败：${error.message}`))
      return
    }
    const items = report.items
    const days = items.map((row) => row.date)
    const specs = [...SPECS]
    if (items.some((row) => row.tier_distribution)) { // members per tier at each day's close
      const names = [...new Set(items.flatMap((row) => Object.keys(row.tier_distribution || {})))].sort()
      specs.push(['tiers', '等级分布', 'bar', names.map((name) => [name, name, null, (row) => (row.tier_distribution || {})[name] || 0])])
    }
    // Every box first, then the charts: each is drawn at its box's final size.
    charts.replaceChildren(...specs.map(([id]) => el('div', { class: 'chart', id: `chart-${id}` })))
    for (const [id, title, type, series] of specs) {
      const box = charts.querySelector(`#chart-${id}`)
      window.consoleCharts[id]?.dispose()
      const chart = window.echarts.init(box)
      chart.setOption({
        title: { text: title, textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { top: 24 },
        grid: { top: 60, left: 60, right: 20, bottom: 30 },
        xAxis: { type: 'category', data: days },
        yAxis: { type: 'value' },
        series: series.map(([field, name, scale, read]) => ({
          name, type, data: items.map((row) => { const v = read ? read(row) : row[field]; return scale ? Number(scale(v)) : v }),
        })),
        animation: false,
      })
      window.consoleCharts[id] = chart
    }
    charts.dataset.ready = String(items.length)
  }
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '概览' }),
    el('label', {}, el('span', { class: 'name', text: '日期' }), from, ' 至 ', to,
      el('button', { type: 'button', id: 'refresh', text: '查询', onclick: draw })), status), charts)
  await draw()
}

// 会员: find a member (phone through the keyed lookup, invite code, member id), then act.
async function membersPage (memberId) {
  const kind = el('select', { id: 'lookup-kind' }, el('option', { value: 'phone', text: '手机号' }),
    el('option', { value: 'invite_code', text: '邀请码' }), el('option', { value: 'member_id', text: '会员ID' }))
  const query = el('input', { id: 'lookup-value', placeholder: '13800000000' })
  const status = el('div')
  const detail = el('div', { id: 'member-detail' })
  const form = el('form', { id: 'lookup-form' }, kind, query, el('button', { type: 'submit', text: '查找' }), status)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    status.replaceChildren()
    try {
      const card = await api('GET', `/v1/admin/member-lookup?${kind.value}=${encodeURIComponent(query.value.trim())}`)
      location.hash = `#/members/${encodeURIComponent(card.member_id)}`
    } catch (error) {
      status.replaceChildren(message(error.status === 404 ? '没有找到该会员' : error.message))
    }
  })
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '查找会员' }), form), detail)
  if (memberId) await memberDetail(detail, memberId)
}

async function memberDetail (box, memberId) {
  const path = `/v1/admin/members/${encodeURIComponent(memberId)}`
  const card = await api('GET', path)
  const history = el('div', { id: 'points-history' })
  const coupons = el('div', { id: 'coupon-history' })
  async function reload () {
    const [fresh, points, events] = await Promise.all([
      api('GET', path), api('GET', `${path}/points/history?limit=20`),
      api('GET', `${path}/coupons?limit=20`).catch(() => ({ items: [] }))])
    summary.replaceChildren(...cardLines(fresh))
    history.replaceChildren(table([['时间', (r) => r.created_at], ['类型', (r) => r.type], ['积分', (r) => r.points],
      ['余额', (r) => r.balance_after], ['原因', (r) => r.reason]], points.items))
    coupons.replaceChildren(table([['时间', (r) => r.created_at], ['优惠券', (r) => r.name], ['券码', (r) => r.code],
      ['事件', (r) => r.event], ['状态', (r) => r.status]], events.items))
  }
  const cardLines = (c) => [
    el('p', { text: `会员ID ${c.member_id} · ${c.nickname || '未填昵称'} · 手机 ${c.phone || '未绑定'}` }),
    el('p', { id: 'balance', text: `可用积分 ${c.points.available} · 冻结 ${c.points.held} · 待审 ${c.points.pending} · ` +
      `等级 ${c.tier.name} (${c.tier.code}) · 成长值 ${c.growth} · 储值 ${fen(c.stored_value_fen)} 元 · 未用优惠券 ${c.coupons_unused}` }),
    el('p', { text: `邀请码 ${c.invite_code} · 入会 ${c.enrolled_at}` }),
  ]
  const summary = el('div', {}, ...cardLines(card))
  const tagsBox = el('div', { id: 'tags' })
  const showTags = () => memberTags(tagsBox, path)
  const action = (id, title, fields, send) => {
    const status = el('span')
    const form = el('form', { id }, el('strong', { text: title }), ...fields.map(([name, label, attrs]) =>
      el('label', {}, el('span', { class: 'name', text: label }), el('input', { name, ...attrs }),
        el('span', { class: 'field-error', 'data-error-for': JSON.stringify([name]) }))),
    el('button', { type: 'submit', text: '提交' }), status)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      clearErrors(form)
      status.replaceChildren()
      try {
        await send(Object.fromEntries(new FormData(form)))
        status.replaceChildren(message('已完成', 'ok'))
        await reload()
      } catch (error) {
        showErrors(form, error.fields)
        status.replaceChildren(message(error.message))
      }
    })
    return form
  }
  box.replaceChildren(
    el('section', { class: 'card' }, el('h2', { text: '会员卡' }), summary),
    el('section', { class: 'card' },
      action('adjust-form', '调整积分', [['points', '积分（可为负）', { type: 'number', required: true }], ['reason', '原因', { required: true }]],
        (f) => api('POST', `${path}/adjustments`, { points: Number(f.points), reason: f.reason, request_id: requestId('adj') })),
      action('tier-form', '授予等级', [['tier', '等级', { required: true }], ['until', '有效至', { type: 'date', required: true }], ['reason', '原因', { required: true }]],
        (f) => api('POST', `${path}/tier`, { ...f, request_id: requestId('tier') })),
      action('grant-form', '发放优惠券', [['template_id', '模板ID', { required: true }]],
        (f) => api('POST', `/v1/admin/coupon-templates/${encodeURIComponent(f.template_id)}/grants`, { member_ids: [memberId], request_id: requestId('grant') })),
      action('redeem-form', '到店核销优惠券', [['code', '券码', { required: true }], ['order_amount_fen', '订单金额(分)', { type: 'number', required: true }]],
        (f) => { const rid = requestId('counter'); return api('POST', '/v1/admin/coupons/redeem', { code: f.code, order_id: rid, order_amount_fen: Number(f.order_amount_fen), request_id: rid }) })),
    el('section', { class: 'card', id: 'member-tags' }, el('h2', { text: '标签' }), tagsBox),
    el('section', { class: 'card' }, el('h2', { text: '积分明细' }), history),
    el('section', { class: 'card' }, el('h2', { text: '优惠券记录' }), coupons))
  await Promise.all([reload(), showTags()])
}

// 标签: manual tags (staff with tags:write add and remove them), computed ones read-only.
const TAG_WRITERS = ['owner', 'manager']
async function memberTags (box, path) {
  const canWrite = TAG_WRITERS.includes(session()?.role)
  const status = el('span', { id: 'tag-status' })
  const chip = (tag, removable) => el('span', { class: removable ? 'tag manual' : 'tag computed', 'data-tag': tag },
    tag, removable
      ? el('button', { type: 'button', class: 'remove-tag', title: `移除 ${tag}`, 'aria-label': `移除 ${tag}`, text: '×',
        onclick: () => change('DELETE', tag) })
      : '')
  const render = (tags) => {
    const manual = el('p', { id: 'manual-tags' }, el('span', { class: 'name', text: '人工标签' }),
      ...(tags.manual.length ? tags.manual.map((t) => chip(t, canWrite)) : [el('span', { class: 'note', text: '无' })]))
    const computed = el('p', { id: 'computed-tags' }, el('span', { class: 'name', text: '计算标签（只读）' }),
      ...(tags.computed.length ? tags.computed.map((t) => chip(t, false)) : [el('span', { class: 'note', text: '无' })]))
    const parts = [manual, computed]
    if (canWrite) {
      const input = el('input', { name: 'tag', id: 'new-tag', required: true, maxlength: 32, placeholder: 'vip' })
      const form = el('form', { id: 'tag-form' }, el('strong', { text: '添加标签' }), input,
        el('button', { type: 'submit', text: '添加' }))
      form.addEventListener('submit', (event) => { event.preventDefault(); change('PUT', input.value.trim()) })
      parts.push(form)
    } else {
      parts.push(el('p', { class: 'note', id: 'tags-read-only', text: '只读：添加或移除标签需要 tags:write 权限（店主、店长）' }))
    }
    box.replaceChildren(...parts, status)
  }
  async function change (method, tag) {
    status.replaceChildren()
    try {
      render(await api(method, `${path}/tags/${encodeURIComponent(tag)}`))
      status.replaceChildren(message(method === 'PUT' ? `已添加 ${tag}` : `已移除 ${tag}`, 'ok'))
    } catch (error) {
      status.replaceChildren(message(error.status === 403 ? '没有权限修改标签' : error.message))
    }
  }
  try {
    render(await api('GET', `${path}/tags`))
  } catch (error) {
    box.replaceChildren(message(error.message))
  }
}

// Program rules: each page edits its part of `GET /v1/admin/program` and saves the whole with
// `PUT` (the version it read: a concurrent edit is a 409). Parts another feature adds (paid
// membership, lotteries) are edited the same way once the rules carry them.
const RULE_PARTS = {
  rules: ['积分规则', ['earning', 'expiry', 'checkin', 'tasks', 'holds']],
  tiers: ['等级', ['tiers', 'tier_policy']],
  'stored-value': ['储值套餐', ['stored_value']],
  membership: ['付费会员', ['membership', 'membership_plans']],
  lottery: ['抽奖', ['lottery', 'lotteries']],
}

async function rulesPage (page) {
  const [title, parts] = RULE_PARTS[page]
  const program = await api('GET', '/v1/admin/program')
  const present = parts.filter((part) => part in program)
  const status = el('div', { id: 'rules-status' })
  const section = el('section', { class: 'card' }, el('h2', { text: title }), status)
  if (!present.length) {
    section.append(message(`规则中还没有这一部分（${parts.join(' / ')}）：此功能尚未启用`, 'note'))
    main.replaceChildren(section)
    return
  }
  let draft = Object.fromEntries(present.map((part) => [part, program[part]]))
  const holder = el('div')
  const form = el('form', { id: 'rules-form' }, holder, el('button', { type: 'submit', text: '保存' }))
  const change = (what, loc) => {
    draft = readForm(holder, draft)
    let target = draft
    for (const step of (what === 'add' ? loc : loc.slice(0, -1))) target = target[step]
    if (what === 'add') target.push(structuredClone(target[target.length - 1]))
    else target.splice(loc[loc.length - 1], 1)
    render()
  }
  const render = () => holder.replaceChildren(...present.map((part) => buildForm(draft[part], [part], change)))
  render()
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    clearErrors(form)
    status.replaceChildren()
    draft = readForm(holder, draft)
    const { program_id: _p, appid: _a, ...rules } = program
    try {
      const saved = await api('PUT', '/v1/admin/program', { ...rules, ...draft })
      program.version = saved.version
      status.replaceChildren(message('已保存', 'ok'))
    } catch (error) {
      const rest = showErrors(form, error.fields)
      status.replaceChildren(message(rest.length ? rest.map((f) => `${f.loc.join('.')}: ${f.message}`).join('；') : error.message))
    }
  })
  section.append(form)
  main.replaceChildren(section)
}

// A catalogue (rewards, coupon templates): the list, and an editor for one entry.
function catalogue ({ title, list, put, blank, editable, idName }) {
  return async function page () {
    const rows = (await api('GET', list)).items
    const editor = el('div', { id: 'editor' })
    const open = (id, value) => {
      const status = el('div', { id: 'editor-status' })
      const idInput = el('input', { id: 'entry-id', value: id || '', required: true, disabled: Boolean(id) })
      const body = Object.fromEntries(Object.keys(blank).map((k) => [k, value && k in value ? value[k] : blank[k]]))
      const holder = buildForm(body)
      const form = el('form', { id: 'entry-form' }, el('label', {}, el('span', { class: 'name', text: idName }), idInput),
        holder, el('button', { type: 'submit', text: '保存' }), status)
      form.addEventListener('submit', async (event) => {
        event.preventDefault()
        clearErrors(form)
        status.replaceChildren()
        const sent = Object.fromEntries(Object.entries(readForm(holder, body)).filter(([k, v]) => v !== null || k === 'total'))
        try {
          await api('PUT', put(idInput.value.trim()), sent)
          status.replaceChildren(message('已保存', 'ok'))
        } catch (error) {
          const rest = showErrors(form, error.fields)
          status.replaceChildren(message(rest.length ? rest.map((f) => `${f.loc.join('.')}: ${f.message}`).join('；') : error.message))
        }
      })
      editor.replaceChildren(el('section', { class: 'card' }, el('h3', { text: id ? `编辑 ${id}` : '新建' }), form))
    }
    main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: title }),
      table([...editable, ['', (r) => el('button', { type: 'button', class: 'edit', 'data-id': r[idName], text: '编辑', onclick: () => open(r[idName], r) })]], rows),
      el('button', { type: 'button', id: 'new-entry', text: '新建', onclick: () => open(null, null) })), editor)
  }
}

const rewardsPage = catalogue({
  title: '奖品', list: '/v1/admin/rewards', idName: 'reward_id', put: (id) => `/v1/admin/rewards/${encodeURIComponent(id)}`,
  blank: { name: '', points_price: 100, cash_fen: 0, stock: 0, per_member_limit: null, active: true },
  editable: [['ID', (r) => r.reward_id], ['名称', (r) => r.name], ['积分价', (r) => r.points_price], ['库存', (r) => r.stock]],
})

const couponsPage = catalogue({
  title: '优惠券模板', list: '/v1/admin/coupon-templates?limit=100', idName: 'template_id',
  put: (id) => `/v1/admin/coupon-templates/${encodeURIComponent(id)}`,
  blank: { name: '', kind: 'amount_off', threshold_fen: 0, off_fen: 500, percent: null, max_off_fen: null, gift_item: null,
           valid_days: 30, valid_from: null, valid_until: null, total: null, per_member_limit: 1, claimable: true, points_price: 0, version: null },
  editable: [['ID', (r) => r.template_id], ['名称', (r) => r.name], ['类型', (r) => r.kind], ['已发', (r) => r.issued], ['剩余', (r) => r.remaining ?? '不限']],
})

// 任务: run a job for a day; the answer is its summary (runs are idempotent per job and day).
// The run is one request; while it works the page polls the run's record (saved after every
// page) once a second and shows its counters growing.
const JOB_STATUS = { none: '未开始', running: '运行中', done: '已完成' }
async function jobsPage () {
  const document_ = await fetch(new URL('openapi.json', API)).then((r) => r.json())
  const jobParam = document_.paths['/v1/admin/jobs/{job}/runs'].post.parameters.find((p) => p.name === 'job')
  const names = jobParam.schema.enum || jobParam.schema.examples || ['expire-points', 'tier-review']
  const job = el('select', { id: 'job' }, ...names.map((n) => el('option', { value: n, text: n })))
  const day = el('input', { type: 'date', id: 'as-of', value: today() })
  const output = el('div', { id: 'job-output' })
  const progress = el('div', { id: 'job-progress', 'aria-live': 'polite' })
  const button = el('button', { type: 'button', id: 'run-job', text: '运行' })
  const showProgress = (p) => {
    progress.dataset.status = p.status
    progress.dataset.pages = String(p.pages)
    progress.replaceChildren(
      el('p', { class: 'note', text: `${JOB_STATUS[p.status] || p.status} · 已处理 ${p.pages} 页 · 调用 ${p.invocations} 次` +
        (p.started_at ? ` · 开始 ${p.started_at}` : '') + (p.finished_at ? ` · 结束 ${p.finished_at}` : '') }),
      table([['计数', (r) => r[0]], ['值', (r) => typeof r[1] === 'object' ? JSON.stringify(r[1]) : String(r[1])]],
        Object.entries(p.summary || {})))
  }
  const run = async () => {
    const name = job.value
    const asOf = day.value
    const url = `/v1/admin/jobs/${encodeURIComponent(name)}/runs/${asOf}`
    let finished = false
    const poll = async () => {
      try {
        const p = await api('GET', url)
        if (!finished) showProgress(p)
      } catch (error) { /* the run's own answer says what went wrong */ }
    }
    button.disabled = true
    output.replaceChildren(message(`运行中：${name} ${asOf}…`, 'note'))
    progress.replaceChildren()
    const timer = setInterval(poll, 1000)
    poll()
    try {
      const summary = await api('POST', `/v1/admin/jobs/${encodeURIComponent(name)}/runs`, { as_of: asOf })
      finished = true
      clearInterval(timer)
      output.replaceChildren(message(summary.complete ? '完成' : '未完成（已到时限，再次运行可继续）', summary.complete ? 'ok' : 'note'),
        el('pre', { id: 'job-summary', text: JSON.stringify(summary, null, 2) }))
      showProgress(await api('GET', url))
    } catch (error) {
      finished = true
      clearInterval(timer)
      output.replaceChildren(message(error.message))
    } finally {
      button.disabled = false
    }
  }
  button.addEventListener('click', run)
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '任务' }), job, day, button, output,
    el('h3', { text: '进度' }), progress))
}

// 审计: every staff write, newest first.
async function auditPage () {
  const box = el('div', { id: 'audit' })
  let cursor = null
  const more = el('button', { type: 'button', text: '更多' })
  const load = async () => {
    const page = await api('GET', `/v1/admin/audit?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    cursor = page.next_cursor
    more.hidden = !cursor
    box.append(table([['时间', (r) => r.at], ['谁', (r) => `${r.actor} (${r.role})`], ['操作', (r) => `${r.method} ${r.path}`],
      ['结果', (r) => `${r.status}${r.error_code ? ' ' + r.error_code : ''}`], ['请求ID', (r) => r.request_id],
      ['内容', (r) => el('details', {}, el('summary', { text: '查看' }), el('pre', { text: JSON.stringify({ body: r.body, before: r.before, after: r.after }, null, 2) }))]],
    page.items))
  }
  more.addEventListener('click', load)
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '审计日志' }), box, more))
  await load()
}

// 员工 (owner): accounts, roles, a clerk's points limit, disabling.
async function staffPage () {
  const { items } = await api('GET', '/v1/admin/staff')
  const status = el('div')
  const form = el('form', { id: 'staff-form' },
    el('label', {}, el('span', { class: 'name', text: '用户名' }), el('input', { name: 'username', required: true })),
    el('label', {}, el('span', { class: 'name', text: '角色' }), el('select', { name: 'role' },
      el('option', { value: 'clerk', text: '店员 clerk' }), el('option', { value: 'manager', text: '店长 manager' }), el('option', { value: 'owner', text: '店主 owner' }))),
    el('label', {}, el('span', { class: 'name', text: '密码（新账号必填）' }), el('input', { name: 'password', type: 'password', autocomplete: 'new-password' }),
      el('span', { class: 'field-error', 'data-error-for': '["password"]' })),
    el('label', {}, el('span', { class: 'name', text: '店员单次调整上限' }), el('input', { name: 'points_limit', type: 'number', min: 0 }),
      el('span', { class: 'field-error', 'data-error-for': '["points_limit"]' })),
    el('label', {}, el('span', { class: 'name', text: '停用' }), el('input', { name: 'disabled', type: 'checkbox' })),
    el('button', { type: 'submit', text: '保存' }), status)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    clearErrors(form)
    const f = new FormData(form)
    const body = { role: f.get('role'), disabled: f.get('disabled') === 'on' }
    if (f.get('password')) body.password = f.get('password')
    if (f.get('points_limit')) body.points_limit = Number(f.get('points_limit'))
    try {
      await api('PUT', `/v1/admin/staff/${encodeURIComponent(f.get('username'))}`, body)
      await staffPage()
    } catch (error) {
      showErrors(form, error.fields)
      status.replaceChildren(message(error.message))
    }
  })
  main.replaceChildren(el('section', { class: 'card' }, el('h2', { text: '员工' }),
    table([['用户名', (r) => r.username], ['角色', (r) => r.role], ['调整上限', (r) => r.points_limit ?? '—'],
      ['状态', (r) => (r.disabled ? '已停用' : '正常')], ['更新', (r) => r.updated_at]], items)),
  el('section', { class: 'card' }, el('h3', { text: '新建或修改' }), form))
}

const ROUTES = {
  dashboard: dashboardPage, members: membersPage, rewards: rewardsPage, coupons: couponsPage, jobs: jobsPage,
  audit: auditPage, staff: staffPage,
  rules: () => rulesPage('rules'), tiers: () => rulesPage('tiers'), 'stored-value': () => rulesPage('stored-value'),
  membership: () => rulesPage('membership'), lottery: () => rulesPage('lottery'),
}

async function show () {
  const [page, ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  if (!session() || page === 'login' || !page) {
    if (session() && !page) { location.hash = session().role === 'clerk' ? '#/members' : '#/dashboard'; return }
    if (!session()) return loginPage()
  }
  const allowed = PAGES.find(([hash]) => hash === page)
  if (!allowed || !allowed[2].includes(session().role)) {
    renderNav(page)
    main.replaceChildren(el('section', { class: 'card', id: 'forbidden' }, message('没有权限查看此页面')))
    return
  }
  renderNav(page)
  main.replaceChildren(el('p', { text: '加载中…' }))
  const ticket = ++shown // a page left before it finished loading must not touch the next one
  try {
    await ROUTES[page](...rest.map(decodeURIComponent))
  } catch (error) {
    if (ticket !== shown) return
    main.replaceChildren(el('section', { class: 'card' }, message(error.status === 403 ? '没有权限' : `出错了：${error.message}`)))
  }
  if (ticket === shown) main.dataset.page = page
}
let shown = 0

document.getElementById('logout').addEventListener('click', () => {
  sessionStorage.removeItem(SESSION)
  location.hash = '#/login'
})
window.addEventListener('hashchange', show)
window.addEventListener('resize', () => Object.values(window.consoleCharts).forEach((chart) => chart.isDisposed() || chart.resize()))
show()
