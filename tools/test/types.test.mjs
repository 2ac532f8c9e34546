// The TypeScript declarations: miniprogram/types/api.d.ts must be exactly what openapi-typescript
// makes of the running service's /openapi.json (a drift fails), and the client's own declarations
// (loyalty.d.ts) must compile against them, strict, as a page written in TypeScript uses them.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, before, it } from 'node:test'
import ts from 'typescript'
import { startStack } from '../lib/stack.mjs'
import { TYPES_FILE, fetchDocument, generateTypes } from '../lib/types.mjs'

let stack
before(async () => { stack = await startStack() })
after(() => stack && stack.stop())

it('types/api.d.ts is what openapi-typescript makes of the live /openapi.json', async () => {
  const generated = await generateTypes(await fetchDocument(stack.api))
  const checkedIn = readFileSync(TYPES_FILE, 'utf8')
  if (generated !== checkedIn) {
    const a = checkedIn.split('\n')
    const b = generated.split('\n')
    const line = a.findIndex((text, i) => text !== b[i])
    assert.fail(`miniprogram/types/api.d.ts differs from the served document from line ${line + 1}:\n` +
      `  checked in: ${a[line]}\n  served:     ${b[line]}\nRun \`make kit-types\` and commit the result.`)
  }
})

function diagnostics (file) {
  const program = ts.createProgram([fileURLToPath(new URL(`types/${file}`, import.meta.url))], {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler, lib: ['lib.es2020.d.ts'], types: [], skipLibCheck: false
  })
  return ts.getPreEmitDiagnostics(program).map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
}

it('loyalty.d.ts and the generated types compile, strict, as a TypeScript page uses them', () => {
  assert.deepEqual(diagnostics('usage.ts'), [])
})

it('and the check can fail: a wrong use of the types does not compile', () => {
  const errors = diagnostics('wrong.ts')
  assert.equal(errors.length, 2, errors.join('\n'))
  assert.match(errors[0], /'number' is not assignable to type 'string'/)
  assert.match(errors[1], /no_such_field/)
})
