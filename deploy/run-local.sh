#!/usr/bin/env bash
# `make run`: the gateway with a real local model server as its fallback.
#
# Unless OPENAI_API_ENDPOINT is set, a llama.cpp server (SmolLM2-135M-Instruct) is started
# on LOCAL_MODEL_PORT and becomes the OpenAI-compatible fallback, so with no Ollama on the
# machine the first request shows the fallback for real. Unless PROXY_API_TOKENS is set,
# a random token is made once and kept in .dev-token. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
export PROXY_HOST=${PROXY_HOST:-127.0.0.1}
export PROXY_PORT=${PROXY_PORT:-8000}
LOCAL_MODEL_PORT=${LOCAL_MODEL_PORT:-8081}

if [ -z "${PROXY_API_TOKENS:-}" ]; then
    [ -s .dev-token ] || (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' > .dev-token)
    PROXY_API_TOKENS=$(cat .dev-token)
    export PROXY_API_TOKENS
fi
TOKEN=${PROXY_API_TOKENS%%,*}

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# Ctrl-C or SIGTERM is how this is meant to stop: a clean exit, not an error for make.
trap 'echo "stopped"; exit 0' INT TERM

port_free() {  # host, port, variable: refuse at once, in one line, a port something else holds
    "$PY" - "$1" "$2" <<'PY' && return 0
import socket, sys
with socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((sys.argv[1], int(sys.argv[2])))
    except OSError:
        sys.exit(1)
PY
    echo "port $2 on $1 is already in use; choose another with $3 (e.g. $3=$(( $2 + 10 )) make run)" >&2
    exit 1
}

wait_for() {  # url, seconds, what, pid: until the URL answers 2xx (llama.cpp says 503 while loading)
    for _ in $(seq 1 $(( $2 * 10 ))); do
        # Whatever answers must be the process started here, not something else on the port.
        kill -0 "$4" 2>/dev/null || { echo "$3 exited before it answered" >&2; exit 1; }
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "$3 did not come up within $2 s" >&2
    exit 1
}

port_free "$PROXY_HOST" "$PROXY_PORT" PROXY_PORT
if [ -z "${OPENAI_API_ENDPOINT:-}" ]; then
    port_free 127.0.0.1 "$LOCAL_MODEL_PORT" LOCAL_MODEL_PORT
    "$PY" -m proxy.local_model --port "$LOCAL_MODEL_PORT" > local-model.log 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$LOCAL_MODEL_PORT/health" 60 "the local model server (see local-model.log)" "${pids[-1]}"
    export OPENAI_API_ENDPOINT="http://127.0.0.1:$LOCAL_MODEL_PORT/v1"
    echo "local model server: SmolLM2-135M-Instruct as model \"smollm2\" at $OPENAI_API_ENDPOINT (log: local-model.log)"
fi

"$PY" -m proxy &
pids+=($!)
wait_for "http://$PROXY_HOST:$PROXY_PORT/livez" 30 "the gateway" "${pids[-1]}"

cat <<MSG

The gateway is up on http://$PROXY_HOST:$PROXY_PORT (Ctrl-C stops it). Try:

  curl -N http://$PROXY_HOST:$PROXY_PORT/api/v1/inference/stream \\
    -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \\
    -d '{"model_id": "smollm2", "input_data": "Write a haiku about the sea.", "parameters": {"max_tokens": 64}}'

MSG
case "${PROXY_PLAYGROUND:-}" in
    [Tt]rue|1|[Yy]es|[Oo]n)
        echo "Or open the playground: http://$PROXY_HOST:$PROXY_PORT/playground/ (token: $TOKEN)"
        echo ;;
esac
wait "${pids[-1]}"
