"""The command line: `python -m proxy [options] [serve|check|keys]`.

Options are shorthands for environment variables (an option wins over the variable), so
configuration still has one reader, config.py, and one set of names. `check` validates
the configuration and the routing table, then probes every backend once, for scripts
and deploy pipelines: exit status 0 when every backend answers, 1 when one does not
(with --allow-degraded: when none does), 2 when the configuration is invalid. `keys`
manages the keys file (proxy/commands/keys.py) and needs no other configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Sequence

import orjson

from proxy.backends.registry import BackendRegistry, backend_names
from proxy.commands import keys as keys_cli
from proxy.serving.model_table import Routes, RoutesError
from proxy.settings.config import ConfigError, Settings
from proxy.settings.environment import ENVIRONMENT
from proxy.tenants.keyring import KeyRing, KeysError

# option -> the variable it sets
_OPTIONS = {
    "host": "PROXY_HOST",
    "port": "PROXY_PORT",
    "workers": "PROXY_WORKERS",
    "log_level": "PROXY_LOG_LEVEL",
    "log_format": "PROXY_LOG_FORMAT",
    "routes_file": "PROXY_ROUTES_FILE",
}

EXIT_OK, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2


def _environment_help() -> str:
    lines = ["environment variables (an option above wins over its variable):"]
    for variable in ENVIRONMENT:
        lines.append(f"  {variable.name}  (default: {variable.default})")
        lines += textwrap.wrap(variable.meaning, width=88, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _settings_options(*, defaults: object) -> argparse.ArgumentParser:
    """The options that set variables; given before or after `serve`/`check` alike.

    The subcommands' copies default to SUPPRESS, so an option given before the
    subcommand is not reset by the subcommand's own default.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--host", default=defaults, help="address to listen on (PROXY_HOST)")
    options.add_argument("--port", default=defaults, help="port to listen on (PROXY_PORT)")
    options.add_argument("--workers", default=defaults, help="processes serving the port (PROXY_WORKERS)")
    options.add_argument("--log-level", default=defaults, help="DEBUG, INFO, WARNING or ERROR (PROXY_LOG_LEVEL)")
    options.add_argument("--log-format", default=defaults, help="json or text (PROXY_LOG_FORMAT)")
    options.add_argument("--routes-file", default=defaults, help="routing table, TOML (PROXY_ROUTES_FILE)")
    return options


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m proxy",
        description="octomil-gateway: one HTTP API for local (Ollama) and cloud (OpenAI-compatible) inference.",
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_settings_options(defaults=None)],
    )
    in_subcommand = _settings_options(defaults=argparse.SUPPRESS)
    commands = root.add_subparsers(dest="command", metavar="{serve,check,keys}")
    commands.add_parser("serve", help="serve the API (the default)", parents=[in_subcommand])
    check = commands.add_parser(
        "check", parents=[in_subcommand], help="validate the configuration and probe every backend once",
        description="Validate the configuration and the routing table, then probe every backend once. "
                    "Exit status: 0 every backend answered, 1 one did not, 2 invalid configuration.")
    check.add_argument("--allow-degraded", action="store_true",
                       help="exit 0 when at least one backend answers")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    keys_cli.add_parser(commands)
    return root


def configure(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    """Parse the command line, apply its options, and read the settings (exit 2 when invalid)."""
    args = parser().parse_args(argv)
    if args.command == "keys":
        raise SystemExit(keys_cli.run(args))
    for option, variable in _OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            os.environ[variable] = value
    try:
        settings = Settings.from_env()
        Routes.load(settings.routes_file, backend_names(settings))  # checked before anything starts
        KeyRing.load(settings.keys_file, settings.api_tokens)
    except (ConfigError, RoutesError, KeysError) as exc:
        print(f"octomil-gateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    return args, settings


def check(settings: Settings, *, allow_degraded: bool, as_json: bool) -> int:
    """Probe every backend; print a report; return the exit status."""
    probes = asyncio.run(_probe(settings))
    if as_json:
        print(orjson.dumps({"backends": probes}).decode())
    else:
        print("configuration: valid")
        for probe in probes:
            verdict = "ok  " if probe["healthy"] else "FAIL"
            detail = f"{probe['latency_ms']} ms" if probe["healthy"] else probe["error"]
            print(f"{verdict} {probe['name']:<10} {probe['url']}  {detail}")
    healthy = sum(1 for probe in probes if probe["healthy"])
    enough = healthy > 0 if allow_degraded else healthy == len(probes)
    return EXIT_OK if enough else EXIT_UNHEALTHY


async def _probe(settings: Settings) -> list[dict[str, object]]:
    registry = BackendRegistry.from_settings(settings)
    try:
        return [
            {"name": backend.name, "provider": backend.provider, "url": backend.display_url,
             "healthy": probe.healthy, "latency_ms": probe.latency_ms, "error": probe.error}
            for backend, probe in await registry.probe_all()
        ]
    finally:
        await registry.aclose()
