// A form for any JSON value, and the server's validation errors shown on their fields.
// Every input carries its path in the value (`data-loc`, the JSON of a list of keys and indexes:
// exactly pydantic's `loc`), so an error answer's `fields[].loc` finds its input.

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'text') node.textContent = value
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value)
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : value)
  }
  for (const child of children) if (child) node.append(child)
  return node
}
export { el }

const locKey = (loc) => JSON.stringify(loc)

// Labels for the fields the console knows; others show their own name.
const LABELS = {
  name: '名称', kind: '类型', threshold_fen: '门槛(分)', off_fen: '减免(分)', percent: '折扣(80=八折)',
  max_off_fen: '最多减(分)', valid_days: '有效天数', valid_from: '开始日期', valid_until: '结束日期',
  total: '总量', per_member_limit: '每人限领', claimable: '可领取', points_price: '积分价', stock: '库存',
  cash_fen: '加钱(分)', active: '上架', plans: '套餐', plan_id: '套餐ID', pay_fen: '支付(分)', bonus_fen: '赠送(分)',
  tiers: '等级', level: '级别', threshold: '成长值门槛', multiplier: '倍率', earning: '积分获取', expiry: '积分过期',
  checkin: '签到', tasks: '任务', holds: '冻结', tier_policy: '等级规则', stored_value: '储值',
}

function leaf(value, loc) {
  const key = locKey(loc)
  if (typeof value === 'boolean') {
    return el('input', { type: 'checkbox', 'data-loc': key, 'data-type': 'boolean', checked: value })
  }
  if (typeof value === 'number') {
    return el('input', { type: 'number', step: 'any', 'data-loc': key, 'data-type': 'number', value: String(value) })
  }
  // strings, and nulls (empty: null; digits: a number; otherwise text)
  return el('input', { type: 'text', 'data-loc': key, 'data-type': value === null ? 'null' : 'string',
                       value: value === null ? '' : String(value), placeholder: value === null ? '(空)' : '' })
}

export function buildForm(value, loc = [], onChange = null) {
  if (Array.isArray(value)) {
    const box = el('fieldset', { 'data-loc': locKey(loc) }, el('legend', { text: LABELS[loc[loc.length - 1]] || String(loc[loc.length - 1] ?? '') }))
    value.forEach((item, index) => {
      const row = el('div', { class: 'item' }, buildForm(item, [...loc, index], onChange))
      if (onChange) row.append(el('button', { type: 'button', text: '删除', onclick: () => onChange('remove', [...loc, index]) }))
      box.append(row)
    })
    if (onChange && value.length) box.append(el('button', { type: 'button', text: '添加一项', onclick: () => onChange('add', loc) }))
    box.append(el('span', { class: 'field-error', 'data-error-for': locKey(loc) }))
    return box
  }
  if (value !== null && typeof value === 'object') {
    const box = el(loc.length ? 'fieldset' : 'div', { 'data-loc': locKey(loc) })
    if (loc.length) box.append(el('legend', { text: LABELS[loc[loc.length - 1]] || String(loc[loc.length - 1]) }))
    for (const [name, child] of Object.entries(value)) {
      const childLoc = [...loc, name]
      if (child !== null && typeof child === 'object') box.append(buildForm(child, childLoc, onChange))
      else box.append(el('label', {}, el('span', { class: 'name', text: LABELS[name] ? `${LABELS[name]} (${name})` : name }),
                         leaf(child, childLoc), el('span', { class: 'field-error', 'data-error-for': locKey(childLoc) })))
    }
    box.append(el('span', { class: 'field-error', 'data-error-for': locKey(loc) }))
    return box
  }
  return el('label', {}, leaf(value, loc), el('span', { class: 'field-error', 'data-error-for': locKey(loc) }))
}

function parseLeaf(input) {
  const type = input.dataset.type
  if (type === 'boolean') return input.checked
  const text = input.value.trim()
  if (type === 'number') return text === '' ? null : Number(text)
  if (type === 'null') {
    if (text === '') return null
    return /^-?\d+$/.test(text) ? Number(text) : text
  }
  return input.value
}

// The value with every input's current content put back at its path.
export function readForm(root, original) {
  const value = structuredClone(original)
  for (const input of root.querySelectorAll('[data-type]')) {
    const loc = JSON.parse(input.dataset.loc)
    if (!loc.length) return parseLeaf(input)
    let target = value
    for (const step of loc.slice(0, -1)) target = target[step]
    target[loc[loc.length - 1]] = parseLeaf(input)
  }
  return value
}

export function clearErrors(root) {
  for (const node of root.querySelectorAll('.field-error')) node.textContent = ''
  for (const node of root.querySelectorAll('.invalid')) node.classList.remove('invalid')
}

// Shows each `{loc, message}` on its input (or on the nearest enclosing part of the form);
// returns the messages that found no place (shown by the caller above the form).
export function showErrors(root, fields, prefix = []) {
  const unplaced = []
  for (const field of fields || []) {
    let loc = field.loc.slice(prefix.length)
    if (prefix.some((step, i) => field.loc[i] !== step)) { unplaced.push(field); continue }
    let placed = false
    while (!placed) {
      const input = root.querySelector(`[data-loc='${CSS.escape(locKey([...prefix, ...loc]))}']`)
      const slot = root.querySelector(`[data-error-for='${CSS.escape(locKey([...prefix, ...loc]))}']`)
      if (input || slot) {
        if (input) input.classList.add('invalid')
        if (slot) slot.textContent = field.message
        placed = true
      } else if (!loc.length) break
      else loc = loc.slice(0, -1)
    }
    if (!placed) unplaced.push(field)
  }
  return unplaced
}
