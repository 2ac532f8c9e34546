// /console serves ECharts from chalicelib/console/ (so `chalice package` ships it and the console
// works offline): the file must be byte for byte the pinned echarts package's dist file
// (`make console-assets` copies it, with its licence and notice).

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { it } from 'node:test'
import { REPO_ROOT } from '../lib/stack.mjs'

const SERVED = join(REPO_ROOT, 'chalicelib', 'console')
const PACKAGE = new URL('../node_modules/echarts/', import.meta.url)

it('the ECharts file the console serves is the pinned echarts release, unchanged', () => {
  const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).devDependencies.echarts
  const installed = JSON.parse(readFileSync(new URL('package.json', PACKAGE), 'utf8')).version
  assert.equal(installed, pinned)
  for (const [served, source] of [['echarts.min.js', 'dist/echarts.min.js'], ['ECHARTS-LICENSE', 'LICENSE'], ['ECHARTS-NOTICE', 'NOTICE']]) {
    assert.ok(readFileSync(join(SERVED, served)).equals(readFileSync(new URL(source, PACKAGE))),
      `chalicelib/console/${served} is not echarts ${pinned}'s ${source}: run \`make console-assets\``)
  }
})
