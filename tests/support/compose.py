"""docker-compose.yaml read as compose reads it: YAML (with merge keys), ``${VAR...}`` interpolation from an env
file, and each service of our image turned into a local process (command, environment, hosts and paths
rewritten) so the slow test runs what compose would run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
IMAGE = "django-etl:latest"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}; $$ is a literal $.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


class ComposeError(ValueError):
    """The file cannot be interpolated as compose would (a required variable is missing)."""


def raw() -> dict[str, Any]:
    """The file as YAML, merge keys resolved, nothing interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def required_variables(text: str | None = None) -> set[str]:
    """Variables the file refuses to start without (``${NAME:?…}`` or ``${NAME?…}``)."""
    text = COMPOSE_FILE.read_text() if text is None else text
    return {m["name"] for m in _VARIABLE.finditer(text) if m["op"] in (":?", "?")}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of every string in ``value`` (lists and mappings walked)."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _substitute(match: re.Match, env: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name, op, arg = match["name"], match["op"], match["arg"] or ""
    present, value = name in env, env.get(name, "")
    if op in (":?", "?"):
        if not present or (op == ":?" and value == ""):
            raise ComposeError(f"required variable {name} is missing: {arg}")
        return value
    if op in (":-", "-"):
        return value if present and (value != "" or op == "-") else arg
    if op in (":+", "+"):
        return arg if present and (value != "" or op == "+") else ""
    return value


def load(env: Mapping[str, str]) -> dict[str, Any]:
    """The file interpolated with ``env`` (what ``docker compose config`` prints)."""
    return interpolate(raw(), env)


def our_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from the project's image."""
    return {name: s for name, s in document["services"].items() if s.get("image") == IMAGE or "build" in s}


@dataclass(frozen=True)
class LocalService:
    """One compose service as a local process: its command (``argv``), environment and health check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str]


def as_local(service: str, spec: dict[str, Any], rewrite) -> LocalService:
    """``rewrite`` maps each string of the service (hosts, ports, paths) to its local counterpart."""
    env = {key: rewrite(str(value)) for key, value in (spec.get("environment") or {}).items()}
    argv = [rewrite(str(arg)) for arg in spec["command"]]
    test = [rewrite(str(arg)) for arg in spec["healthcheck"]["test"]]
    if test[0] == "CMD-SHELL":
        test = ["sh", "-c", test[1]]
    elif test[0] == "CMD":
        test = test[1:]
    return LocalService(service, argv, env, test)
