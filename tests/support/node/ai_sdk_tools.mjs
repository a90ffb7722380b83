// The Vercel AI SDK's default OpenAI provider with a function tool, against a gateway:
//
//     node ai_sdk_tools.mjs BASE_URL TOKEN MODEL
//
// generateText runs the whole round trip (the model calls the tool, the SDK runs it and
// sends the result back, the model answers); streamText streams the call. Prints one JSON
// object with the steps' calls, results and texts, and the stream's part types.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const [baseURL, apiKey, modelId] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey });
const model = openai(modelId);
const tools = {
  get_current_weather: tool({
    description: "Get the current weather for a location",
    inputSchema: jsonSchema({
      type: "object",
      properties: { location: { type: "string" }, format: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["location", "format"],
      additionalProperties: false,
    }),
    execute: async ({ location }) => ({ location, temperature: 21 }),
  }),
};

const prompt = "What is the weather today in Paris?";
const generated = await generateText({ model, tools, prompt, stopWhen: stepCountIs(2), maxRetries: 0 });
const streamed = streamText({ model, tools, prompt, maxRetries: 0 });
const partTypes = [];
const calls = [];
for await (const part of streamed.fullStream) {
  partTypes.push(part.type);
  if (part.type === "tool-call") calls.push({ name: part.toolName, input: part.input });
  if (part.type === "error") calls.push({ error: String(part.error?.message ?? part.error) });
}
console.log(JSON.stringify({
  steps: generated.steps.map((step) => ({
    calls: step.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
    results: step.toolResults.map((r) => r.output),
    text: step.text,
    finishReason: step.finishReason,
  })),
  text: generated.text,
  streamed: { partTypes, calls },
}));
