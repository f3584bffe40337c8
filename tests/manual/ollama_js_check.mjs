// ollama-js against an octoroute router: chat (buffered, streamed, with a tool), generate
// (buffered, streamed), embed, embeddings, list, show, ps, version, and an unknown model.
// Not run by CI: copy it into a scratch directory with `npm install ollama` and run
// `node ollama_js_check.mjs http://127.0.0.1:<port>` against `octoroute demo` (docs/clients.md).
import { Ollama } from 'ollama'

const host = process.argv[2] ?? 'http://127.0.0.1:18431'
const ollama = new Ollama({ host })
const results = {}
const check = (name, ok, detail) => {
  results[name] = ok ? 'ok' : `FAILED: ${JSON.stringify(detail)}`
}
const messages = [{ role: 'user', content: 'Say hello' }]

const chat = await ollama.chat({ model: 'fast', messages })
check('chat', chat.done === true && chat.message.content.length > 0 && chat.eval_count > 0, chat)

let streamed = ''
let last
for await (const part of await ollama.chat({ model: 'auto', messages, stream: true })) {
  streamed += part.message.content
  last = part
}
check('chat stream', last.done === true && last.done_reason === 'stop' && streamed.length > 0, last)

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}
const asked = [{ role: 'user', content: 'What is the weather in Paris? Use the tool.' }]
const called = await ollama.chat({ model: 'deep', messages: asked, tools: [weather] })
const call = called.message.tool_calls?.[0]
check('chat tool call', call?.function?.name === 'get_weather' && typeof call.function.arguments === 'object', called.message)
let streamedCalls = []
for await (const part of await ollama.chat({ model: 'deep', messages: asked, tools: [weather], stream: true })) {
  streamedCalls.push(...(part.message.tool_calls ?? []))
}
check('chat tool call streamed', streamedCalls.length === 1 && typeof streamedCalls[0].function.arguments === 'object', streamedCalls)
if (call) {
  const answered = await ollama.chat({
    model: 'deep',
    messages: [...asked, called.message, { role: 'tool', content: '18 C, sunny', tool_name: 'get_weather' }],
    tools: [weather],
  })
  check('tool round trip', answered.message.content.length > 0, answered.message)
}

const generated = await ollama.generate({ model: 'fast', prompt: 'Why is the sky blue?' })
check('generate', generated.done === true && generated.response.length > 0, generated)
let text = ''
for await (const part of await ollama.generate({ model: 'fast', prompt: 'Hi', stream: true })) {
  text += part.response
  last = part
}
check('generate stream', last.done === true && text.length > 0, last)

const embedded = await ollama.embed({ model: 'sim-embed', input: ['one', 'two'] })
check('embed', embedded.embeddings.length === 2 && embedded.embeddings[0].length > 0, embedded)
const legacy = await ollama.embeddings({ model: 'sim-embed', prompt: 'one' })
check('embeddings', legacy.embedding.length > 0, legacy)

const listed = await ollama.list()
const names = listed.models.map((m) => m.name)
check('list', names.includes('auto:latest') && names.includes('sim-embed:latest'), names)
const shown = await ollama.show({ model: 'fast' })
check('show', Array.isArray(shown.capabilities) && shown.model_info['general.architecture'] === 'octoroute', shown)
const running = await ollama.ps()
check('ps', Array.isArray(running.models), running)
const version = await ollama.version()
check('version', typeof version.version === 'string', version)

try {
  await ollama.chat({ model: 'nope', messages })
  check('unknown model', false, 'no error')
} catch (error) {
  check('unknown model', error.name === 'ResponseError' && error.status_code === 404 && error.error.startsWith("model 'nope' not found"), { name: error.name, status: error.status_code, error: error.error })
}

console.log(JSON.stringify(results, null, 1))
process.exit(Object.values(results).every((r) => r === 'ok') ? 0 : 1)
