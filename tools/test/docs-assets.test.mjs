// /docs serves Swagger UI from chalicelib/api/swagger_ui/ (so `chalice package` ships it): those
// files must be byte for byte the pinned swagger-ui-dist's (`make docs-assets` copies them).

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { it } from 'node:test'
import { REPO_ROOT } from '../lib/stack.mjs'

const SERVED = join(REPO_ROOT, 'chalicelib', 'api', 'swagger_ui')
const PACKAGE = new URL('../node_modules/swagger-ui-dist/', import.meta.url)

it('the Swagger UI files the API serves are the pinned swagger-ui-dist release, unchanged', () => {
  const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).devDependencies['swagger-ui-dist']
  const installed = JSON.parse(readFileSync(new URL('package.json', PACKAGE), 'utf8')).version
  assert.equal(installed, pinned)
  for (const name of ['swagger-ui-bundle.js', 'swagger-ui.css', 'LICENSE', 'NOTICE']) {
    assert.ok(readFileSync(join(SERVED, name)).equals(readFileSync(new URL(name, PACKAGE))),
      `chalicelib/api/swagger_ui/${name} is not swagger-ui-dist ${pinned}'s: run \`make docs-assets\``)
  }
})
