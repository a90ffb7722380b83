"""deploy/: the systemd unit, the Dockerfile, compose and Kubernetes files agree with the gateway
and with each other: probes hit routes that answer without a token, stop timeouts outlast a
graceful stop, secrets come from where the files say, health checks really run."""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yarl import URL

from proxy.settings.config import Settings
from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.deploy import KUBERNETES_VERSION, stop_budget
from tests.support.gateway_process import running_gateway
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "octomil-gateway.service"
ENV_EXAMPLE = DEPLOY / "octomil-gateway.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
NGINX_CONF = DEPLOY / "nginx.conf"
K8S = DEPLOY / "k8s"
# What the oldest cluster the manifest is written for must accept (native sidecars, preStop sleep).
# --- readers ----------------------------------------------------------------------------------


def env_file(path: pathlib.Path) -> dict[str, str]:
    """VARIABLE=value lines, as systemd's EnvironmentFile and docker's --env-file read them."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def unit_options(path: pathlib.Path) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            options.setdefault(key, []).append(value)
    return options


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            if keyword.upper() == "FROM":
                instructions = []
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def healthcheck_command() -> str:
    [args] = [rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    return args[args.index("CMD ") + len("CMD "):]


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_spec() -> dict[str, Any]:
    [deployment] = [doc for doc in k8s_documents() if doc["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def sidecar() -> dict[str, Any]:
    spec = pod_spec()
    [gateway] = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "octomil-gateway"]
    return gateway  # type: ignore[no-any-return]


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def nginx_directives() -> dict[tuple[str, ...], dict[str, str]]:
    """{block path, e.g. ("server", "location = /x"): {directive: arguments}} of deploy/nginx.conf."""
    text = re.sub(r"#.*", "", NGINX_CONF.read_text())
    blocks: dict[tuple[str, ...], dict[str, str]] = {(): {}}
    path: list[str] = []
    for statement in re.findall(r"[^{};]*[{};]", text):
        words, end = " ".join(statement[:-1].split()), statement[-1]
        if end == "{":
            path.append(words)
            blocks.setdefault(tuple(path), {})
        elif end == "}":
            path.pop()
        elif words:
            name, _, arguments = words.partition(" ")
            blocks[tuple(path)][name] = arguments
    return blocks


def nginx_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()  # type: ignore[union-attr]
    return float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[unit]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def seconds(duration: str) -> float:
    """A compose duration such as "75s" or "1m30s"."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# --- Kubernetes -------------------------------------------------------------------------------


def test_kubernetes_manifests_are_valid_against_the_kubernetes_schema() -> None:
    documents = k8s_documents()
    assert {doc["kind"] for doc in documents} == {"Deployment", "Secret"}
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # unknown fields are errors too


async def test_the_sidecars_probes_reach_routes_that_answer_without_a_token(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    container = sidecar()
    env = env_values(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url)  # tokens configured: auth is on
    assert (await gateway.get("/api/v1/health")).status == 401
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        target = container[probe]["httpGet"]
        assert ports[target["port"]] == int(env["PROXY_PORT"]), probe
        assert "httpHeaders" not in target  # no token in the manifest
        assert (await gateway.get(target["path"])).status == 200, probe
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"  # restarts only for a stuck process
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # out of rotation when it cannot serve
    # The kubelet probes the pod's IP, never its loopback.
    assert env["PROXY_HOST"] == "0.0.0.0"


def test_the_sidecar_is_native_so_it_outlives_the_app() -> None:
    spec = pod_spec()
    assert sidecar() in spec["initContainers"]
    assert sidecar()["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    app_env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert URL(app_env["OCTOMIL_GATEWAY_URL"]).port == int(env_values(sidecar())["PROXY_PORT"])


def test_the_pods_grace_period_covers_the_apps_prestop_and_a_graceful_stop_of_the_gateway() -> None:
    spec = pod_spec()
    grace = float(env_values(sidecar())["PROXY_SHUTDOWN_GRACE"])
    pre_stop = sum(c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                   for c in spec["containers"])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + stop_budget(grace)


def test_the_pod_runs_the_images_user_unprivileged_on_a_read_only_root() -> None:
    [user] = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True  # needs a numeric USER in the image
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (int(uid), int(gid))
    context = sidecar()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # A writable /tmp (tempfiles, PROMETHEUS_MULTIPROC_DIR with several workers) from a volume that exists.
    [tmp] = [m for m in sidecar()["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp["name"] in {v["name"] for v in spec["volumes"]}


def test_every_secret_the_deployment_reads_is_in_the_example_secret() -> None:
    [secret] = [doc for doc in k8s_documents() if doc["kind"] == "Secret"]
    spec = pod_spec()
    for container in spec["initContainers"] + spec["containers"]:
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"], entry
                assert ref["key"] in secret["stringData"], entry
    # Empty on purpose: applied unchanged, the gateway refuses to start rather than run with a known token.
    assert secret["stringData"]["PROXY_API_TOKENS"] == ""


# --- nginx (its behaviour is proved in a real nginx by tests/deploy/test_nginx.py) --------------------


def test_nginx_waits_longer_than_the_gateway_would_for_an_answer() -> None:
    """A read timeout in nginx below the gateway's own timers would turn a slow but healthy
    answer, such as a cold start, into nginx's 504."""
    blocks = nginx_directives()
    server = blocks[("server",)]
    [stream] = [directives for path, directives in blocks.items() if path and "inference/stream" in path[-1]]
    timers = Settings(api_tokens=("t",), openai_endpoint="http://openai.test/v1").timeouts
    # Nothing, not even headers, before the first token: Ollama's cold start, then the fallback's first token.
    assert nginx_seconds(stream["proxy_read_timeout"]) > timers.cold_start + timers.first_token
    # A single-shot call: each of the two backends for its whole budget.
    assert nginx_seconds(server["proxy_read_timeout"]) > 2 * timers.total
    assert stream["proxy_buffering"] == "off" and stream["gzip"] == "off"


# --- the example environment file -------------------------------------------------------------


def run_with_env(values: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={"PATH": os.environ["PATH"], **values},
        capture_output=True, text=True, timeout=60, check=False)


def test_the_example_env_file_refuses_to_start_as_it_is_and_is_valid_once_a_token_is_set() -> None:
    values = env_file(ENV_EXAMPLE)
    refused = run_with_env(values, "-m", "proxy")
    assert refused.returncode == 2
    assert "PROXY_API_TOKENS" in refused.stderr

    values["PROXY_API_TOKENS"] = "a-token-of-ones-own"
    checked = run_with_env(values, "-c", "from proxy.settings.config import Settings; print(Settings.from_env().port)")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == values["PROXY_PORT"]


# --- systemd ----------------------------------------------------------------------------------


def test_the_systemd_unit_runs_the_gateway_module_and_stops_it_gracefully() -> None:
    options = unit_options(UNIT)
    [exec_start] = options["ExecStart"]
    assert shlex.split(exec_start)[1:] == ["-m", "proxy"]
    assert importlib.util.find_spec("proxy.__main__") is not None
    assert options["EnvironmentFile"] == ["/etc/octomil-gateway/gateway.env"]
    assert options["KillSignal"] == ["SIGTERM"]
    assert options["KillMode"] == ["mixed"]  # only the main process, which passes it on to the workers
    assert options["Restart"] == ["on-failure"]
    grace = float(env_file(ENV_EXAMPLE)["PROXY_SHUTDOWN_GRACE"])
    assert float(options["TimeoutStopSec"][0]) > stop_budget(grace)


def test_systemd_accepts_the_unit_and_rates_it_hardened(tmp_path: pathlib.Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart's program exists: point it at this interpreter.
    unit = tmp_path / UNIT.name
    [exec_start] = unit_options(UNIT)["ExecStart"]
    unit.write_text(UNIT.read_text().replace(exec_start.split()[0], sys.executable))
    verify = subprocess.run([analyze, "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert verify.returncode == 0 and unit.name not in verify.stderr, verify.stderr
    # systemd's own exposure score, 0 (locked down) to 10 (unprotected); the threshold is x10.
    security = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                              capture_output=True, text=True, timeout=60, check=False)
    assert security.returncode == 0, security.stdout.splitlines()[-1:]


# --- Docker and compose -----------------------------------------------------------------------


def test_the_image_runs_the_gateway_unprivileged_and_listening_beyond_loopback() -> None:
    instructions = dockerfile_instructions()
    [user] = [rest for keyword, rest in instructions if keyword == "USER"]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user)  # numeric and not root, for runAsNonRoot
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "PROXY_HOST=0.0.0.0" in env
    assert ("CMD", '["python", "-m", "proxy"]') in instructions  # exec form: the gateway itself gets SIGTERM


def test_docker_builds_get_what_the_dockerfile_copies_and_no_secrets() -> None:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns)

    copies = re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    # Sources from the build context (not --from another stage); the last word is the destination.
    copied = [src for args in copies if not args.startswith("--from") for src in args.split()[:-1]]
    assert copied and not any(ignored(src) for src in copied), copied
    for secret in (".dev-token", "deploy/gateway.env"):
        assert ignored(secret), secret


def test_compose_wires_the_gateway_to_ollama_and_keeps_its_secrets_out_of_git() -> None:
    services = compose()["services"]
    gateway = services["gateway"]
    env = gateway["environment"]
    ollama = URL(env["OLLAMA_BASE_URL"])
    assert (ollama.host, ollama.port) == ("ollama", 11434)
    assert ollama.host in services
    assert env["PROXY_HOST"] == "0.0.0.0"
    for name in gateway["depends_on"]:
        assert name in services
    [published] = gateway["ports"]
    host_ip, _, target = published.rpartition(":")
    assert host_ip.startswith("127.0.0.1:")  # the host's loopback only
    assert target == env["PROXY_PORT"]
    assert seconds(gateway["stop_grace_period"]) > stop_budget(float(env["PROXY_SHUTDOWN_GRACE"]))
    env_path = f"deploy/{gateway['env_file']}"
    assert env_path in (ROOT / ".gitignore").read_text().splitlines()
    assert env_path in (ROOT / ".dockerignore").read_text().splitlines()


async def test_the_health_checks_pass_on_a_live_gateway_and_fail_once_it_has_stopped() -> None:
    compose_check = compose()["services"]["gateway"]["healthcheck"]["test"]
    assert compose_check[0] == "CMD"

    async def healthy(port: int) -> tuple[bool, bool]:
        """(the image's check, compose's check) against the gateway on `port`."""
        env = {"PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}", "PROXY_PORT": str(port)}
        image = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", healthcheck_command(), env=env, stderr=asyncio.subprocess.DEVNULL)
        # compose's check names the port compose sets (PROXY_PORT: "8000"); here the gateway has another.
        argv = [arg.replace(":8000/", f":{port}/") for arg in compose_check[1:]]
        composed = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.DEVNULL)
        return await image.wait() == 0, await composed.wait() == 0

    env = {"PROXY_API_TOKENS": "deploy-test-token", "OLLAMA_BASE_URL": "http://127.0.0.1:9"}
    async with running_gateway(env) as gateway:
        assert await healthy(gateway.port) == (True, True)
        gateway.process.send_signal(signal.SIGTERM)
        assert await gateway.process.wait() == 0
        assert await healthy(gateway.port) == (False, False)
