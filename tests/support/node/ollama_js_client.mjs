// Drives the official Ollama client for JavaScript (npm `ollama`), unchanged, against a
// gateway's Ollama API, with the key as a bearer header in the client's `headers` config:
//
//     node ollama_js_client.mjs HOST TOKEN WRONG_TOKEN CHAT_MODEL
//
// Runs every case once and prints one JSON object, case name -> what the client returned,
// or {"error": {name, message, status_code}} for what it threw.
import { Ollama } from "ollama";

const [host, token, wrongToken, model] = process.argv.slice(2);
const client = new Ollama({ host, headers: { Authorization: `Bearer ${token}` } });
const stranger = new Ollama({ host, headers: { Authorization: `Bearer ${wrongToken}` } });
const question = [{ role: "user", content: "2+2?" }];

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

// A stream that breaks: the parts read before the client threw, and what it threw.
async function collectUntilBroken(stream) {
  const parts = [];
  try {
    for await (const part of stream) parts.push(part);
    return { parts };
  } catch (error) {
    return { parts, thrown: { name: error.name, message: error.message } };
  }
}

const cases = {
  chat: () => client.chat({ model, messages: question, options: { temperature: 0 } }),
  streamedChat: async () => collect(await client.chat({ model, messages: question, stream: true })),
  streamedGenerate: async () => collect(await client.generate({ model, prompt: "Count", system: "Be brief.", stream: true })),
  embed: () => client.embed({ model: "nomic-embed-text", input: ["one", "three"] }),
  list: () => client.list(),
  ps: () => client.ps(),
  show: () => client.show({ model }),
  version: () => client.version(),
  wrongToken: () => stranger.chat({ model, messages: question }),
  wrongTokenStreamed: () => stranger.generate({ model, prompt: "hi", stream: true }),
  forbiddenModel: () => client.chat({ model: "llama3-secret", messages: question }),
  brokenStream: async () => collectUntilBroken(
    await client.chat({ model: "midstream-error", messages: question, stream: true })),
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  try {
    results[name] = await run();
  } catch (error) {
    results[name] = { error: { name: error.name, message: error.message, status_code: error.status_code } };
  }
}
console.log(JSON.stringify(results));
