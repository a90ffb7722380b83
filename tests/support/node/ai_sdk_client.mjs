// Drives the Vercel AI SDK's default OpenAI provider (`openai(model)`, which calls
// /v1/responses) against a gateway, unchanged:
//
//     node ai_sdk_client.mjs BASE_URL TOKEN MODEL
//
// Prints one JSON object: what generateText and streamText returned, and the stream's
// parts by type (an `error` part when the answer was cut). A generateText that fails
// (an answer cut upstream is an error, not a short answer) is printed as its message.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const [baseURL, apiKey, modelId] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey });
const model = openai(modelId);

let generated;
try {
  generated = await generateText({
    model, system: "Be brief.", prompt: "What is 2+2?", maxRetries: 0,
  });
} catch (error) {
  generated = { error: String(error?.message ?? error) };
}

const deltas = [];
const partTypes = [];
const errors = [];
const result = streamText({
  model, prompt: "What is 2+2?", maxRetries: 0,
  onError: ({ error }) => errors.push(String(error?.message ?? error)),
});
for await (const part of result.fullStream) {
  partTypes.push(part.type);
  if (part.type === "text-delta") deltas.push(part.text);
}

console.log(JSON.stringify({
  generated: generated.error !== undefined ? { error: generated.error } : {
    text: generated.text,
    finishReason: generated.finishReason,
    usage: generated.usage,
    responseId: generated.response.id,
  },
  streamed: {
    deltas,
    partTypes,
    errors,
    finishReason: await result.finishReason,
    usage: await result.usage,
  },
}));
