// A web app served from another origin than the gateway, calling it the way the browser SDK
// does: fetch, an Authorization header, a JSON body, and a stream read from the response body.
// The test drives these functions with page.evaluate; what they return is what the page could
// read. A call the browser refuses returns {refused: "<the error the page saw>"}.
"use strict";

// Every stream event, pushed the moment the page has read it; and whether the stream is over.
window.streamed = [];
window.streamEnded = false;

function request(token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return { method: body === undefined ? "GET" : "POST", headers, body: body && JSON.stringify(body) };
}

function readable(response) {
  return {
    status: response.status,
    contentType: response.headers.get("Content-Type"),
    requestId: response.headers.get("X-Request-ID"),
    serverTiming: response.headers.get("Server-Timing"),
    retryAfter: response.headers.get("Retry-After"),
  };
}

async function refusedOr(call) {
  try {
    return await call();
  } catch (error) {
    return { refused: `${error.name}: ${error.message}` };
  }
}

// POST /api/v1/inference/stream; events are parsed from `data:` lines as the bytes arrive.
async function streamInference(gateway, token, body) {
  try {
    return await refusedOr(() => readStream(gateway, token, body));
  } finally {
    window.streamEnded = true;
  }
}

async function readStream(gateway, token, body) {
  const response = await fetch(`${gateway}/api/v1/inference/stream`, request(token, body));
  const result = { ...readable(response), reads: 0, events: [] };
  if (!response.ok) return { ...result, body: await response.json() };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return result;
    result.reads += 1;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const event = JSON.parse(line.slice(6));
        result.events.push(event);
        window.streamed.push(event);
      }
    }
  }
}

// Any other call: its status, the headers a client reads, and its JSON body.
async function callGateway(gateway, token, path, body) {
  return refusedOr(async () => {
    const response = await fetch(`${gateway}${path}`, request(token, body));
    return { ...readable(response), body: await response.json() };
  });
}
