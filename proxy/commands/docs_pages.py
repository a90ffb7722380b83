"""The prose around the generated tables of docs/configuration.md and docs/errors.md.

proxy/commands/docs.py fills `{table}` (and `{generated}`, the note that says where the page comes
from) and writes the pages; edit the words here, then run `make docs`.
"""

from __future__ import annotations

CONFIGURATION = """
# Configuration

{generated}

All configuration is read from the environment once, at start-up. Invalid values stop start-up
with one message naming every bad variable (exit status 2). At least one backend must be
configured (`OLLAMA_BASE_URL` or `OPENAI_API_ENDPOINT`), and tokens, a keys file or
`PROXY_AUTH_DISABLED=true`: the gateway refuses to start open by accident.
`deploy/octomil-gateway.env.example` holds the usual ones in the `VARIABLE=value` form that
systemd, `docker --env-file` and compose read; [Deployment](deployment.md) shows how to check a
configuration before it goes live.

{table}

## Command line

`python -m proxy --help` documents every option and every variable above. Options are shorthands
for the variables and win over them (`--host`, `--port`, `--workers`, `--log-level`,
`--log-format`, `--routes-file`):

```text
python -m proxy [options]                    # serve (the default; also `serve`)
python -m proxy check [--json] [--allow-degraded]
                                             # validate the configuration, probe every backend once
python -m proxy keys add NAME [--file F] [limits] [--admin]
python -m proxy keys list [--file F]         # API keys: see keys-and-limits.md
```

```sh
python -m proxy --help | grep -A1 '  PROXY_PORT '
```
```text
  PROXY_PORT  (default: 8000)
```

`make run` reads two more, which are its own and not the gateway's: `LOCAL_MODEL_PORT` (default
8081), the port of the local model server it starts unless `OPENAI_API_ENDPOINT` is set, and
`PY`, the Python it runs (default `.venv/bin/python`).
"""

ERRORS = """
# Errors

{generated}

Every error is JSON with a stable `code`, a `message` for people, `retryable`, and the
`request_id` (also in the `X-Request-ID` header, taken from the client's `X-Request-ID` when it
sends a plain one). Validation errors list every problem with its JSON path in `errors`, and bad
input never reaches an upstream:

```sh
curl -s $GW/api/v1/inference -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d '{"model_id": "smollm2", "input_data": "Hi", "parameters": {"max_tokens": "many", "foo": 1}}'
```
```json
{"code": "invalid_input", "retryable": false, "request_id": "5f0c2a9e41d7",
 "message": "invalid request: expected an integer @ $.parameters.max_tokens; unknown field(s): foo @ $.parameters",
 "errors": ["expected an integer @ $.parameters.max_tokens", "unknown field(s): foo @ $.parameters"]}
```

{table}

"Next backend tried" is for failures of one backend: a request another backend may serve moves
on (see [Streams and fallback](streams-and-fallback.md)); when none can, the answer sums the
attempts up under the status they agree on (`model_not_found` when every backend lacks the
model, `request_timeout` when all timed out, else `upstream_unavailable`) and lists them in
`attempts`. A 429 (`rate_limited`) also carries `limit`, `limit_value` and `retry_after`; see
[Keys and limits](keys-and-limits.md). A stream that fails after its first token cannot change
its status any more: its last event carries the error instead (see
[Streams and fallback](streams-and-fallback.md#streams-what-the-client-can-rely-on)).

## Under `/v1`: OpenAI's shape

The same statuses and codes come in OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, with `type` as OpenAI names it for the status (`invalid_request_error`,
`authentication_error`, `permission_error`, `rate_limit_error`, `server_error`) so the OpenAI
clients raise the exception class they would for OpenAI, and `param` naming the field to fix:

```sh
curl -s $GW/v1/chat/completions -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d '{"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "n": 2}'
```
```json
{"error": {"message": "invalid request: only n=1 is supported @ $.n", "type": "invalid_request_error",
           "param": "n", "code": "invalid_input", "errors": ["only n=1 is supported @ $.n"],
           "request_id": "5f0c2a9e41d7"}}
```
"""
