// node gen-types.mjs --write   regenerates miniprogram/types/api.d.ts from a fresh local stack
// node gen-types.mjs           prints what it would write
import { writeFileSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { startStack } from './lib/stack.mjs'
import { TYPES_FILE, fetchDocument, generateTypes } from './lib/types.mjs'

const stack = await startStack()
try {
  const text = await generateTypes(await fetchDocument(stack.api))
  if (process.argv.includes('--write')) {
    mkdirSync(dirname(TYPES_FILE), { recursive: true })
    writeFileSync(TYPES_FILE, text)
    console.log(`wrote ${TYPES_FILE}`)
  } else {
    process.stdout.write(text)
  }
} finally {
  await stack.stop()
}
