"""The published contracts, checked with the official validators.

- OpenAPI: ``openapi-spec-validator`` (PyPI) on the document the app serves; every operation that needs a key
  declares its Bearer scheme, and the declaration tells the truth (no key: 401 exactly where a scheme is declared).
- AsyncAPI: the official ``@asyncapi/parser`` (npm), run with node, on the committed ``docs/asyncapi.yaml``. The
  parser is installed once into ``.state/tools/asyncapi-parser`` (gitignored) by the fixture below.
"""

from __future__ import annotations

import copy
import fcntl
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from openapi_spec_validator import validate

from schemas import topics

ROOT = Path(__file__).resolve().parents[2]
PARSER_PACKAGE = "@asyncapi/parser"
PARSER_VERSION = "3.6.3"
PINNED = f"{PARSER_PACKAGE}@{PARSER_VERSION}"
PARSER_DIR = ROOT / ".state" / "tools" / "asyncapi-parser"
PARSE_SCRIPT = Path(__file__).with_name("asyncapi_parse.cjs")

# Operations anyone may call: probes, and the receipt public keys (a verifier needs no account).
OPEN_OPERATIONS = {("GET", "/health"), ("GET", "/ready"), ("GET", "/v1/receipts/keys")}
METHODS = ("get", "post", "put", "patch", "delete")


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def test_openapi_document_is_valid_and_names_the_key_of_every_operation(app: FastAPI) -> None:
    document = app.openapi()
    validate(document)  # raises OpenAPIValidationError naming the first problem
    schemes = document["components"]["securitySchemes"]
    assert schemes["CustomerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_live_...",
        "description": schemes["CustomerKey"]["description"],
    }
    assert schemes["AdminKey"]["scheme"] == "bearer"
    assert schemes["AdminKey"]["bearerFormat"] == "sk_admin_..."
    declared = {(method, path): op.get("security") for method, path, op in _operations(document)}
    assert declared[("POST", "/v1/check")] == [{"CustomerKey": []}]
    assert declared[("GET", "/v1/decisions")] == [{"CustomerKey": []}]
    for (method, path), security in declared.items():
        if (method, path) in OPEN_OPERATIONS:
            assert security is None, (method, path)
        elif path.startswith(("/admin/", "/policies", "/logs", "/asyncapi.json")):
            assert security == [{"AdminKey": []}], (method, path)
        else:
            assert security is not None, f"{method} {path} declares no key"


async def test_declared_schemes_match_what_the_api_refuses(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Without a key, an operation answers 401 exactly when the document says it needs one."""
    for method, path, operation in _operations(app.openapi()):
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        response = await client.request(method, url, json=body)
        if operation.get("security"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code != 401, (method, path)


# --- AsyncAPI ---------------------------------------------------------------------------------------------------


def _installed_version() -> str | None:
    manifest = PARSER_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"
    try:
        version: str = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="session")
def asyncapi_parser() -> Path:
    """The node_modules folder holding the pinned official parser, installed on first use."""
    npm = shutil.which("npm")
    assert shutil.which("node"), "the AsyncAPI check runs the official parser with node: Debian's nodejs"
    assert npm, "the official parser is installed from the npm registry with npm: Debian's npm"
    PARSER_DIR.mkdir(parents=True, exist_ok=True)
    with (PARSER_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # runs side by side install once
        if _installed_version() != PARSER_VERSION:
            subprocess.run(
                [npm, "install", "--prefix", str(PARSER_DIR), "--no-audit", "--no-fund", "--loglevel=error", PINNED],
                check=True,
                capture_output=True,
                timeout=300,
            )
    assert _installed_version() == PARSER_VERSION
    return PARSER_DIR / "node_modules"


def _parse(modules: Path, document: Path) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    assert node
    done = subprocess.run(
        [node, str(PARSE_SCRIPT), str(modules), str(document)], capture_output=True, text=True, timeout=120, check=False
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines


def test_asyncapi_document_passes_the_official_parser(asyncapi_parser: Path, project_root: Path) -> None:
    returncode, lines = _parse(asyncapi_parser, project_root / "docs" / "asyncapi.yaml")
    errors = [line for line in lines if line.get("severity") == 0]
    assert returncode == 0, errors or lines
    summary = lines[-1]
    assert summary["parsed"] is True
    assert sorted(summary["channels"]) == sorted(
        [topics.DECISIONS, topics.ALERTS, topics.SIGNALS, topics.DECISIONS_DLQ]
    )


def test_the_parser_refuses_a_broken_document(asyncapi_parser: Path, project_root: Path, tmp_path: Path) -> None:
    """The check above can fail: a message pointing at a schema that does not exist is an error."""
    document = yaml.safe_load((project_root / "docs" / "asyncapi.yaml").read_text())
    broken = copy.deepcopy(document)
    message = broken["components"]["messages"][f"{topics.DECISIONS}:Message"]
    message["payload"] = {"$ref": "#/components/schemas/NoSuchEvent"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    returncode, lines = _parse(asyncapi_parser, path)
    assert returncode != 0
    assert any(line.get("severity") == 0 for line in lines), lines


def test_asyncapi_events_mark_their_type_and_version_required(project_root: Path) -> None:
    document = yaml.safe_load((project_root / "docs" / "asyncapi.yaml").read_text())
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    payloads = {"DecisionEvent": topics.DECISIONS, "AlertEvent": topics.ALERTS, "SignalEvent": topics.SIGNALS}
    for schema_name, topic in payloads.items():
        message = messages[f"{topic}:Message"]
        assert message["payload"] == {"$ref": f"#/components/schemas/{schema_name}"}
        schema = schemas[schema_name]
        assert {"schema_version", "event_type", "event_id"} <= set(schema["required"]), schema_name
        assert set(schema["required"]) == set(schema["properties"]), f"{schema_name}: every field is always sent"
    for topic in (topics.DECISIONS, topics.ALERTS, topics.SIGNALS, topics.DECISIONS_DLQ):
        headers = messages[f"{topic}:Message"]["headers"]
        assert {topics.HEADER_EVENT_TYPE, topics.HEADER_SCHEMA_VERSION, topics.HEADER_CONTENT_TYPE} <= set(
            headers["required"]
        ), topic
