"""deploy/fleet/: the Kubernetes example and the compose file agree with Kubernetes' schemas and
with the gateway (its variables, its probes, its Redis). nginx-fleet.conf itself runs in a
real nginx in tests/fleet/test_fleet.py."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml
from yarl import URL

from proxy.settings.environment import ENVIRONMENT
from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.deploy import KUBERNETES_VERSION, stop_budget
from tests.support.paths import ROOT

FLEET = ROOT / "deploy" / "fleet"
KNOWN_VARIABLES = {variable.name for variable in ENVIRONMENT}


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((FLEET / "k8s.yaml").read_text()) if doc]


def by_name(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def gateway_container() -> dict[str, Any]:
    [container] = by_name("Deployment", "octomil-gateway")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_fleet_manifests_are_valid_against_the_kubernetes_schema() -> None:
    documents = k8s_documents()
    assert {doc["kind"] for doc in documents} == {"Deployment", "Service", "PodDisruptionBudget"}
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_several_replicas_share_the_redis_the_manifest_runs() -> None:
    gateway = by_name("Deployment", "octomil-gateway")
    assert gateway["spec"]["replicas"] >= 2
    assert by_name("PodDisruptionBudget", "octomil-gateway")["spec"]["minAvailable"] < gateway["spec"]["replicas"]
    env = env_of(gateway_container())
    assert set(env) <= KNOWN_VARIABLES
    redis_url = URL(env["PROXY_REDIS_URL"])
    service = by_name("Service", "octomil-gateway-redis")
    assert redis_url.host == service["metadata"]["name"]
    assert redis_url.port in {p["port"] for p in service["spec"]["ports"]}
    redis_pods = by_name("Deployment", "octomil-gateway-redis")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= redis_pods.items()
    assert env["PROXY_REDIS_FAILURE"] in {"open", "closed"}
    [keys] = [m for m in gateway_container()["volumeMounts"] if m["name"] == "keys"]
    assert env["PROXY_KEYS_FILE"].startswith(keys["mountPath"] + "/")


def test_the_grace_period_covers_a_graceful_stop() -> None:
    spec = by_name("Deployment", "octomil-gateway")["spec"]["template"]["spec"]
    grace = float(env_of(gateway_container()).get("PROXY_SHUTDOWN_GRACE", "30"))
    assert spec["terminationGracePeriodSeconds"] > stop_budget(grace)


async def test_the_fleets_probes_answer_without_a_token_even_while_redis_is_down(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    container = gateway_container()
    gateway = await make_gateway(headers={}, openai_endpoint=openai.url,
                                 redis_url="redis://127.0.0.1:9/0")  # nothing listens there
    assert (await gateway.get("/api/v1/health")).status == 401
    for probe in ("livenessProbe", "readinessProbe"):
        target = container[probe]["httpGet"]
        assert "httpHeaders" not in target
        assert (await gateway.get(target["path"])).status == 200, probe
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[container["readinessProbe"]["httpGet"]["port"]] == int(env_of(container)["PROXY_PORT"])


def test_the_compose_fleet_has_replicas_redis_and_nginx_wired_together() -> None:
    compose = yaml.safe_load((FLEET / "compose.yaml").read_text())
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    assert gateway["build"] == {"context": "../..", "dockerfile": "deploy/Dockerfile"}
    assert set(gateway["environment"]) <= KNOWN_VARIABLES
    assert URL(gateway["environment"]["PROXY_REDIS_URL"]).host in services
    assert "ports" not in gateway  # reached through nginx only
    [site] = services["nginx"]["volumes"]
    source, _, target = site.partition(":")
    assert (FLEET / source).exists() and target.startswith("/etc/nginx/conf.d/")
    assert "gateway:8000" in (FLEET / source).read_text()
    keys_mount = next(v for v in gateway["volumes"] if v.endswith(":ro") and "keys" in v)
    assert keys_mount.split(":")[1] == gateway["environment"]["PROXY_KEYS_FILE"]
