// Runs the example mini-program's own files in Node: App(), Page() and Component() capture their
// definitions, an instance gets `data` and `setData` as in the runtime, and `wx` is a fake one
// (support/fake-wx.mjs) forwarding to the local stack.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MINIPROGRAM, require } from './kit.mjs'

function setPath (data, path, value) {
  const keys = path.split('.')
  let target = data
  for (const key of keys.slice(0, -1)) target = target[key] = target[key] || {}
  target[keys[keys.length - 1]] = value
}

function instance (definition) {
  const methods = { ...definition, ...(definition.methods || {}) }
  const self = {
    ...methods,
    data: structuredClone(definition.data || {}),
    setData (changes) {
      for (const [path, value] of Object.entries(changes)) setPath(self.data, path, value)
    }
  }
  return self
}

/** Launches the app (App() and onLaunch) against `api` with `wx`; returns {app, open(page)}. */
export function launch ({ api, wx }) {
  for (const id of Object.keys(require.cache)) if (id.startsWith(MINIPROGRAM)) delete require.cache[id]
  let app, captured
  globalThis.wx = wx
  globalThis.App = definition => { app = definition }
  globalThis.Page = definition => { captured = definition }
  globalThis.Component = definition => { captured = definition }
  globalThis.getApp = () => app
  require('./config.js').baseUrl = api
  require('./app.js')
  app.onLaunch()

  const load = path => {
    captured = null
    require('./' + path + '.js')
    return instance(captured)
  }
  return {
    app,
    /** A page, e.g. open('pages/card/card'), ready for its handlers. */
    open: load,
    /** A component, attached. */
    attach (path) {
      const component = load(path)
      const definition = captured
      definition.lifetimes.attached.call(component)
      component.detach = () => definition.lifetimes.detached.call(component)
      return component
    }
  }
}

export function appJson () {
  return JSON.parse(readFileSync(join(MINIPROGRAM, 'app.json'), 'utf8'))
}

export function file (path) {
  return readFileSync(join(MINIPROGRAM, path), 'utf8')
}
