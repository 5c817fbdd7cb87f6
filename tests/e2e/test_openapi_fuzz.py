"""The OpenAPI document covers every HTTP route, and a schema-driven fuzzer finds no 500s."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ARTIFACTS

ROUTES = {
    ("get", "/v1/info"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ("post", "/v2/stream"), ("post", "/v1/webrtc/offer"), ("get", "/tags"),
    ("get", "/v1/tag-collections"), ("post", "/v1/tag-collections"),
    ("post", "/v1/process/audio"), ("put", "/v1/process/audio/{conversationId}"),
    ("get", "/v1/job/{jobId}"), ("get", "/v1/job/{jobId}/webhooks"),
    ("get", "/v1/webhooks/secret"), ("get", "/v1/conversations/{conversationId}"),
    ("delete", "/v1/conversations/{conversationId}"),
    ("get", "/v1/conversations/{conversationId}/messages"),
    ("get", "/v1/conversations/{conversationId}/topics"),
    ("get", "/v1/conversations/{conversationId}/summary"),
}


def test_openapi_lists_every_route_with_schemas(server) -> None:
    doc = httpx.get(f"{server.http}/openapi.json").json()
    listed = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert ROUTES <= listed, ROUTES - listed
    job = doc["paths"]["/v1/job/{jobId}"]["get"]["responses"]["200"]
    assert job["content"]["application/json"]["schema"]
    upload = doc["paths"]["/v1/process/audio"]["post"]
    assert "application/octet-stream" in upload["requestBody"]["content"]


def test_fuzzer_finds_no_server_errors(server) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st, "schemathesis is a test dependency: pip install -e .[test]"
    ARTIFACTS.mkdir(exist_ok=True)
    run = subprocess.run(
        [st, "run", f"{server.http}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "25", "--seed", "7", "--request-timeout", "60",
         "--exclude-path", "/metrics"],
        capture_output=True, text=True, timeout=280)
    (ARTIFACTS / "schemathesis.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "passed" in run.stdout
