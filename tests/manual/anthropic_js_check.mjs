// @anthropic-ai/sdk against an octoroute router: messages.create, messages.stream (text events
// and the final message), a tool-use round trip streamed, an image block, countTokens, errors.
// Not run by CI: copy it into a scratch directory with `npm install @anthropic-ai/sdk` and run
// `node anthropic_js_check.mjs http://127.0.0.1:<port>` against `octoroute demo` (docs/clients.md).
import Anthropic from '@anthropic-ai/sdk'

const baseURL = process.argv[2] ?? 'http://127.0.0.1:18431'
const client = new Anthropic({ baseURL, apiKey: 'unused', maxRetries: 0 })
const results = {}
const check = (name, ok, detail) => {
  results[name] = ok ? 'ok' : `FAILED: ${JSON.stringify(detail)}`
}
const messages = [{ role: 'user', content: 'Say hello' }]

const message = await client.messages.create({ model: 'fast', max_tokens: 200, messages })
check('create', message.type === 'message' && message.content[0].type === 'text' && message.stop_reason === 'end_turn' && message.usage.output_tokens > 0, message)

let text = ''
const stream = client.messages.stream({ model: 'auto', max_tokens: 200, messages })
stream.on('text', (piece) => { text += piece })
const final = await stream.finalMessage()
check('stream', text.length > 0 && final.content[0].text === text && final.stop_reason === 'end_turn' && final.usage.output_tokens > 0, { text, final })

const tools = [{
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}]
const asked = [{ role: 'user', content: 'What is the weather in Paris? Use the tool.' }]
const toolStream = client.messages.stream({ model: 'deep', max_tokens: 200, messages: asked, tools })
const jsonPieces = []
toolStream.on('inputJson', (partial) => jsonPieces.push(partial))
const called = await toolStream.finalMessage()
const use = called.content.find((block) => block.type === 'tool_use')
check('tool use streamed', called.stop_reason === 'tool_use' && use?.name === 'get_weather' && typeof use.input === 'object' && jsonPieces.length > 0, called)
if (use) {
  const answered = await client.messages.create({
    model: 'deep', max_tokens: 200, tools,
    messages: [...asked, { role: 'assistant', content: called.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 C, sunny' }] }],
  })
  check('tool round trip', answered.content[0].type === 'text', answered)
}

const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
const seen = await client.messages.create({
  model: 'deep', max_tokens: 100,
  messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }, { type: 'text', text: 'What is this?' }] }],
})
check('image', seen.content[0].type === 'text', seen)

const counted = await client.messages.countTokens({ model: 'auto', system: 'Be brief.', messages, tools })
check('countTokens', Number.isInteger(counted.input_tokens) && counted.input_tokens > 0, counted)

try {
  await client.messages.create({ model: 'no-such-model', max_tokens: 10, messages })
  check('not found', false, 'no error')
} catch (error) {
  check('not found', error instanceof Anthropic.NotFoundError && error.error?.error?.type === 'not_found_error', { name: error.constructor.name, body: error.error })
}
try {
  await client.messages.create({ model: 'auto', messages })
  check('bad request', false, 'no error')
} catch (error) {
  check('bad request', error instanceof Anthropic.BadRequestError && error.error?.error?.type === 'invalid_request_error', { name: error.constructor.name, body: error.error })
}

console.log(JSON.stringify(results, null, 1))
process.exit(Object.values(results).every((r) => r === 'ok') ? 0 : 1)
