"""Keys files for tests: each tenant's secret, and the file that stores only its hash."""

from __future__ import annotations

import pathlib
from typing import Any

from proxy.tenants.keyring import stored_hash

ADMIN = "admin"


def secret_of(name: str) -> str:
    return f"ogw_test_secret_of_{name}_0123456789abcdef"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret_of(name)}"}


def keys_toml(tenants: dict[str, dict[str, Any]]) -> str:
    """One [keys.NAME] table per tenant, with the given fields (lists and booleans in TOML)."""
    tables = []
    for name, fields in tenants.items():
        lines = [f'[keys."{name}"]', f'hash = "{stored_hash(secret_of(name))}"']
        for field, value in fields.items():
            if isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, str):
                rendered = f'"{value}"'
            elif isinstance(value, list):
                rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]"
            else:
                rendered = str(value)
            lines.append(f"{field} = {rendered}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def write_keys(path: pathlib.Path, tenants: dict[str, dict[str, Any]]) -> pathlib.Path:
    """The keys file at `path` (an admin key included), replaced whole as `keys add` does."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(keys_toml({ADMIN: {"admin": True}, **tenants}))
    temporary.replace(path)
    return path


def read_text(path: pathlib.Path) -> str:
    return path.read_text()


def write_text(path: pathlib.Path, text: str) -> None:
    path.write_text(text)


def write_bytes(path: pathlib.Path, content: bytes) -> None:
    path.write_bytes(content)
