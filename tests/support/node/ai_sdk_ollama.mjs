// Drives the AI SDK's community Ollama provider (npm `ollama-ai-provider-v2`), unchanged,
// against a gateway's Ollama API (/api/chat, /api/embed, /api/generate), the key as a bearer header:
//
//     node ai_sdk_ollama.mjs HOST TOKEN WRONG_TOKEN CHAT_MODEL TOOL_MODEL
//
// Runs every case once and prints one JSON object, case name -> what the SDK returned, or
// {"error": {name, message, statusCode, responseBody}} for what it threw.
import { createOllama } from "ollama-ai-provider-v2";
import { embedMany, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const [host, token, wrongToken, chatModel, toolModel] = process.argv.slice(2);
const provider = (key) => createOllama({ baseURL: `${host}/api`, headers: { Authorization: `Bearer ${key}` } });
const ollama = provider(token);
const model = ollama(chatModel);
const tools = {
  get_current_weather: tool({
    description: "Get the current weather for a location",
    inputSchema: jsonSchema({
      type: "object",
      properties: { location: { type: "string" }, format: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["location", "format"],
    }),
    execute: async ({ location }) => ({ location, temperature: 21 }),
  }),
};

const generated = (result) => ({ text: result.text, finishReason: result.finishReason, usage: result.usage });

async function streamed(result) {
  const parts = [];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") parts.push({ type: part.type, text: part.text });
    else if (part.type === "tool-call") parts.push({ type: part.type, name: part.toolName, input: part.input });
    else if (part.type === "error") parts.push({ type: part.type, error: String(part.error?.message ?? part.error) });
    else parts.push({ type: part.type });
  }
  return { parts, finishReason: await result.finishReason, usage: await result.usage };
}

const cases = {
  generated: async () => generated(await generateText({
    model, system: "Be brief.", prompt: "What is 2+2?", maxRetries: 0 })),
  // The SDK's own settings, which this provider sends at the top level of the chat request.
  withSettings: async () => generated(await generateText({
    model, prompt: "What is 2+2?", temperature: 0, topP: 0.5, maxOutputTokens: 50, maxRetries: 0 })),
  // The same settings where Ollama reads them.
  withOptions: async () => generated(await generateText({
    model, prompt: "What is 2+2?", maxRetries: 0,
    providerOptions: { ollama: { options: { temperature: 0, top_p: 0.5, num_predict: 50 } } } })),
  streamed: async () => streamed(streamText({ model, prompt: "What is 2+2?", maxRetries: 0 })),
  toolRoundTrip: async () => {
    const result = await generateText({
      model: ollama(toolModel), tools, prompt: "What is the weather today in Paris?",
      stopWhen: stepCountIs(2), maxRetries: 0,
    });
    return {
      steps: result.steps.map((step) => ({
        calls: step.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
        results: step.toolResults.map((r) => r.output),
        text: step.text,
        finishReason: step.finishReason,
      })),
      text: result.text,
    };
  },
  streamedToolCall: async () => streamed(streamText({
    model: ollama(toolModel), tools, prompt: "What is the weather today in Paris?", maxRetries: 0 })),
  embedded: async () => {
    const result = await embedMany({ model: ollama.embedding("nomic-embed-text"), values: ["one", "three"], maxRetries: 0 });
    return { sizes: result.embeddings.map((v) => v.length), heads: result.embeddings.map((v) => v.slice(0, 3)),
             usage: result.usage };
  },
  // The provider's completion model, which calls /api/generate.
  completionModel: async () => generated(await generateText({
    model: ollama.completion(chatModel), prompt: "Count", maxRetries: 0 })),
  wrongToken: async () => generated(await generateText({
    model: provider(wrongToken)(chatModel), prompt: "hi", maxRetries: 0 })),
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  try {
    results[name] = await run();
  } catch (error) {
    results[name] = { error: {
      name: error.name, message: error.message, statusCode: error.statusCode, responseBody: error.responseBody } };
  }
}
console.log(JSON.stringify(results));
