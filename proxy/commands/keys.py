"""`python -m proxy keys add NAME` and `keys list`: manage the keys file without editing hashes.

`add` makes a secret of 32 random bytes, prints it once on stdout (alone, so a script can
capture it) and stores only its SHA-256 in the keys file, with the limits given. The file
is rewritten whole through a rename, so a gateway reloading it never reads half a file,
and it is checked before it replaces the old one. Running gateways pick the key up within
PROXY_KEYS_RELOAD seconds, or at once on SIGHUP. To remove a key, delete its table.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import secrets
import sys
import tempfile
from typing import Any

from proxy.settings.config import keys_file_from_env
from proxy.tenants.keyring import LIMIT_FIELDS, NAME_PATTERN, KeysError, parse_keys, stored_hash

SECRET_PREFIX = "ogw_"  # noqa: S105 (a prefix, not a secret): recognisable in a leaked log, as GitHub's ghp_


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `keys` (with `add` and `list`) on an argparse subparsers object."""
    keys: argparse.ArgumentParser = subparsers.add_parser(
        "keys", help="manage API keys in the keys file (PROXY_KEYS_FILE)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", help="the keys file (default: PROXY_KEYS_FILE)")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    add = actions.add_parser("add", parents=[common],
                             help="add a key; prints its secret once and stores only its hash")
    add.add_argument("name", help="the key's name, shown in logs, metrics and usage (letters, digits, . _ -)")
    for field in LIMIT_FIELDS:
        add.add_argument(f"--{field.replace('_', '-')}", type=_positive, dest=field, metavar="N",
                         help=f"{field.replace('_', ' ')} (default: unlimited)")
    add.add_argument("--model", action="append", dest="models", metavar="MODEL",
                     help="a model this key may use; repeat for several (default: every model)")
    add.add_argument("--admin", action="store_true", help="may read GET /api/v1/admin/usage")
    add.set_defaults(run=_add)
    listing = actions.add_parser("list", parents=[common], help="list the keys (names and limits, never hashes)")
    listing.set_defaults(run=_list)
    return keys


def run(args: argparse.Namespace) -> int:
    path = args.file or keys_file_from_env()
    if path is None:
        print("octomil-gateway: no keys file: pass --file or set PROXY_KEYS_FILE", file=sys.stderr)
        return 2
    try:
        code: int = args.run(pathlib.Path(path), args)
    except (KeysError, OSError) as exc:
        print(f"octomil-gateway: {exc}", file=sys.stderr)
        return 2
    return code


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add(path: pathlib.Path, args: argparse.Namespace) -> int:
    if not NAME_PATTERN.fullmatch(args.name):
        print(f"octomil-gateway: {args.name!r}: a name is 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    names = {tenant.name for tenant in parse_keys(text, str(path)).values()}
    if args.name in names:
        print(f"octomil-gateway: {path}: a key named {args.name!r} exists already", file=sys.stderr)
        return 2
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    updated = (text.rstrip("\n") + "\n\n" if text.strip() else "") + _table(args, stored_hash(secret))
    parse_keys(updated, str(path))  # the file as it will be read, before it replaces the old one
    _replace(path, updated)
    print(secret)
    print(f"key {args.name!r} added to {path}. This is the only time its secret is shown: store it now. "
          "Running gateways accept it within PROXY_KEYS_RELOAD seconds, or at once on SIGHUP.", file=sys.stderr)
    return 0


def _table(args: argparse.Namespace, hashed: str) -> str:
    lines = [f'[keys."{args.name}"]', f'hash = "{hashed}"']
    lines += [f"{field} = {getattr(args, field)}" for field in LIMIT_FIELDS if getattr(args, field) is not None]
    if args.models:
        lines.append("models = [" + ", ".join(_toml_string(m) for m in args.models) + "]")
    if args.admin:
        lines.append("admin = true")
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _replace(path: pathlib.Path, text: str) -> None:
    """Write `text` to a new file beside `path`, then rename it over `path` (atomic)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _list(path: pathlib.Path, _args: argparse.Namespace) -> int:
    tenants = sorted(parse_keys(path.read_text(encoding="utf-8"), str(path)).values(), key=lambda t: t.name)
    for tenant in tenants:
        limits = ", ".join(f"{name}={value}" for name, value in tenant.limits.to_json().items() if value is not None)
        models = ", ".join(sorted(tenant.models)) if tenant.models is not None else "every model"
        print(f"{tenant.name}\t{limits or 'unlimited'}\t{models}{chr(9) + 'admin' if tenant.admin else ''}")
    return 0
