// The playground: the gateway's public API, called from a browser exactly as a web app
// would call it (fetch, an Authorization header, Server-Sent Events read from the body).
// Nothing here is fetched from anywhere but this gateway, and no text from an answer or
// an error is ever parsed as HTML: it is set as text.
"use strict";

(() => {
  const TOKEN_KEY = "octomil-gateway.playground.token";
  const HEALTH_EVERY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  // Relative to the page, so the playground also works behind a proxy that adds a path prefix.
  const apiUrl = (path) => new URL(`../api/v1/${path}`, document.baseURI).toString();

  let token = "";
  let running = null; // the AbortController of the stream in progress
  let healthTimer = null;

  function headers(extra = {}) {
    return { Authorization: `Bearer ${token}`, ...extra };
  }

  function ms(value) {
    return `${Math.round(value)} ms`;
  }

  // A gateway error is JSON: {code, message, retryable, request_id}. Anything else (a proxy's
  // HTML page, say) is shown as the start of its text.
  async function describeError(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      return `${response.status} ${body.code}: ${body.message}`;
    } catch {
      return `${response.status} ${response.statusText} ${text.slice(0, 200)}`.trim();
    }
  }

  // --- token ---------------------------------------------------------------------------

  function useToken(value, remember) {
    token = value.trim();
    if (remember && token) {
      sessionStorage.setItem(TOKEN_KEY, token);
    } else {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }

  async function connect(event) {
    event?.preventDefault();
    useToken($("token").value, $("remember").checked);
    $("auth-status").classList.remove("error");
    $("auth-status").textContent = "connecting…";
    const [models] = await Promise.all([loadModels(), loadHealth()]);
    if (models) $("auth-status").textContent = "connected"; // else it says what went wrong
    $("refresh").disabled = false;
    scheduleHealth();
  }

  // --- models --------------------------------------------------------------------------

  async function loadModels() {
    let response;
    try {
      response = await fetch(apiUrl("models"), { headers: headers() });
    } catch (error) {
      showAuthProblem(`cannot reach the gateway: ${error.message}`);
      return false;
    }
    if (!response.ok) {
      showAuthProblem(await describeError(response));
      return false;
    }
    const body = await response.json();
    // Embeddings-only models cannot answer a prompt; a model without kinds can.
    const chat = body.models.filter((m) => !m.kinds || m.kinds.includes("chat"));
    const list = $("models");
    list.replaceChildren(...chat.map((m) => {
      const option = document.createElement("option");
      option.value = m.model_id;
      const available = m.backends.filter((b) => b.available).map((b) => b.backend);
      option.label = available.length ? `on ${available.join(", ")}` : "no backend reports it now";
      return option;
    }));
    if (!$("model").value && chat.length) {
      $("model").value = chat[0].model_id;
    }
    return true;
  }

  function showAuthProblem(message) {
    $("auth-status").textContent = message;
    $("auth-status").classList.add("error");
  }

  // --- health --------------------------------------------------------------------------

  async function loadHealth() {
    let response;
    try {
      response = await fetch(apiUrl("health"), { headers: headers() });
    } catch (error) {
      $("health-summary").textContent = `cannot reach the gateway: ${error.message}`;
      return false;
    }
    // 503 still carries the full answer: no backend can serve, and each one says why.
    if (response.status !== 200 && response.status !== 503) {
      $("health-summary").textContent = await describeError(response);
      return false;
    }
    const body = await response.json();
    const healthy = body.backends.filter((b) => b.healthy).length;
    $("health-summary").textContent =
      `${body.status}: ${healthy} of ${body.backends.length} backends answer · ` +
      `${body.in_flight} requests in flight · checked ${new Date().toLocaleTimeString()}`;
    $("backends").replaceChildren(...body.backends.flatMap(healthRows));
    return true;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function badge(text, kind) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = `badge ${kind}`;
    span.textContent = text;
    td.append(span);
    return td;
  }

  function healthRows(backend) {
    const row = document.createElement("tr");
    row.dataset.backend = backend.name;
    const breaker = { closed: "ok", half_open: "warn", open: "down" }[backend.state] || "warn";
    row.append(
      cell(backend.name),
      cell(backend.provider),
      badge(backend.healthy ? "up" : "down", backend.healthy ? "ok" : "down"),
      badge(backend.state, breaker),
      cell(ms(backend.latency_ms)),
    );
    if (!backend.error) return [row];
    row.classList.add("has-detail");
    const detail = document.createElement("tr");
    const td = cell(`${backend.url}: ${backend.error}`, "detail");
    td.colSpan = 5;
    detail.append(td);
    return [row, detail];
  }

  function scheduleHealth() {
    clearInterval(healthTimer);
    healthTimer = setInterval(() => {
      if (document.visibilityState === "visible") loadHealth();
    }, HEALTH_EVERY_MS);
  }

  // --- streaming -----------------------------------------------------------------------

  // Server-Sent Events from a fetch body: `data:` lines make an event, a blank line ends it,
  // lines starting with ':' are comments (the gateway's keep-alive pings).
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const raw of lines) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "") {
          if (data.length) onEvent(JSON.parse(data.join("\n")));
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
      }
    }
  }

  function requestBody() {
    const parameters = {};
    const maxTokens = $("max-tokens").value;
    const temperature = $("temperature").value;
    if (maxTokens) parameters.max_tokens = Number(maxTokens);
    if (temperature) parameters.temperature = Number(temperature);
    return {
      model_id: $("model").value.trim(),
      messages: [{ role: "user", content: $("prompt").value }],
      parameters,
    };
  }

  function resetAnswer() {
    $("answer").textContent = "";
    $("error").hidden = true;
    for (const id of ["provider", "ttft", "total", "tokens", "finish", "request-id"]) {
      $(`stat-${id}`).textContent = "—";
    }
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function setRunning(controller, status) {
    running = controller;
    $("send").disabled = Boolean(controller);
    $("stop").disabled = !controller;
    $("answer").classList.toggle("streaming", Boolean(controller));
    $("run-status").textContent = status;
  }

  // Server-Timing of a stream is the gateway's own time to its first token.
  function gatewayMs(response) {
    const match = /dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
    return match ? Number(match[1]) : null;
  }

  async function send(event) {
    event.preventDefault();
    useToken($("token").value, $("remember").checked);
    resetAnswer();
    const controller = new AbortController();
    setRunning(controller, "waiting for the first token…");
    const started = performance.now();
    let firstTokenAt = null;
    let finished = false;
    let failed = false;
    try {
      const response = await fetch(apiUrl("inference/stream"), {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(requestBody()),
        signal: controller.signal,
      });
      $("stat-request-id").textContent = response.headers.get("X-Request-ID") || "—";
      if (!response.ok) {
        showError(await describeError(response));
        return;
      }
      const gateway = gatewayMs(response);
      await readEvents(response.body, (data) => {
        if (data.provider) $("stat-provider").textContent = data.provider;
        if (data.token) {
          if (firstTokenAt === null) {
            firstTokenAt = performance.now();
            $("stat-ttft").textContent =
              ms(firstTokenAt - started) + (gateway === null ? "" : ` (gateway ${ms(gateway)})`);
            $("run-status").textContent = "streaming…";
          }
          $("answer").append(data.token);
        }
        if (data.done) {
          finished = true;
          const total = performance.now() - started;
          $("stat-total").textContent =
            ms(total) + (typeof data.latency_ms === "number" ? ` (gateway ${ms(data.latency_ms)})` : "");
          if (data.usage) {
            $("stat-tokens").textContent = `${data.usage.prompt_tokens} in · ${data.usage.completion_tokens} out`;
          }
          $("stat-finish").textContent = data.finish_reason || (data.error ? "error" : "—");
          if (data.error) {
            failed = true;
            showError(`${data.error.code}: ${data.error.message}`);
          }
        }
      });
      if (!finished) showError("the stream ended without its final event");
    } catch (error) {
      if (error.name === "AbortError") {
        $("stat-finish").textContent = "stopped";
      } else {
        showError(`the request failed: ${error.message}`);
      }
    } finally {
      setRunning(null, finished ? (failed ? "ended with an error" : "done") : "");
      loadHealth();
    }
  }

  // --- wiring --------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("auth").addEventListener("submit", connect);
    $("ask").addEventListener("submit", send);
    $("stop").addEventListener("click", () => running?.abort());
    $("refresh").addEventListener("click", loadHealth);
    $("token").addEventListener("input", () => $("auth-status").classList.remove("error"));
    $("remember").addEventListener("change", () => useToken($("token").value, $("remember").checked));
    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept) {
      $("token").value = kept;
      $("remember").checked = true;
      connect();
    }
  });
})();
