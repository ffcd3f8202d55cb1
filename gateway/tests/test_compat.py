"""Older `pinecone` clients and the integrations that bring their own, each in a cached venv
of its own (gateway/tests/compat/venvs.py), against the real servers: the control plane
(granian WSGI) and the gateway (granian ASGI).

* `test_pinecone_client_flow`: the basic control- and data-plane flow
  (gateway/tests/compat/pinecone_flow.py) with the oldest and newest supported clients, 5.4.2,
  6.0.2 and 10.2.0 (the test venv's own). Clients 5.x-7.x check `spec.serverless.cloud`
  against `aws | gcp | azure`; before indexes kept their cloud and region, every
  control-plane call of theirs failed.
* `test_integration_readme_example`: the README's "Using existing Pinecone integrations"
  examples, run exactly as printed there (their code and their output are read from the
  README), with LangChain's and LlamaIndex's pinned releases and the `pinecone` client pip
  resolves for each.

The venvs' builds start when this module is collected (gateway/tests/conftest.py), so on a
cold cache they overlap the tests that run before these. Scripts run with no proxy for
loopback and a dead proxy for everything else, so a download through urllib, requests or
httpx (a model, a tokenizer's files) fails at once instead of passing where a network is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.tests.compat import venvs
from gateway.tests.conftest import REPO, Gateway, Platform, Server, unique
from provisioning.models import Index
from tenants.models import Scope

pytestmark = pytest.mark.slow

FLOW = Path(venvs.__file__).with_name("pinecone_flow.py")
SCRIPT_TIMEOUT = 180.0
# Where each client comes from: a cached venv, or (10.x) the test venv itself.
CLIENTS = ["pinecone-5", "pinecone-6", "pinecone-10"]
INTEGRATIONS = ["langchain", "llamaindex"]
# The `pinecone` majors each integration's pinned release accepts (its own requirement).
INTEGRATION_CLIENTS = {"langchain": range(6, 8), "llamaindex": range(7, 10)}
ENVIRONMENTS = ["pinecone-5", "pinecone-6", *INTEGRATIONS]


def script_env(**extra: str) -> dict[str, str]:
    """A plain environment for a client script: no PINECONE_* of the caller's, no Python
    settings of the test venv's, and no way out but loopback."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    env.update(
        HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead,
        http_proxy=dead, https_proxy=dead, all_proxy=dead,
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )  # fmt: skip
    env.update(extra)
    return env


def run(python: Path | str, argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(python), *argv],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def pinned(name: str, distribution: str) -> str:
    """The exact version `requirements/<name>.txt` pins for `distribution`."""
    for line in venvs.requirements(name).read_text().splitlines():
        if line.startswith(f"{distribution}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{distribution} is not pinned in {name}.txt")


# ============================================================================ clients


def expected_version(client: str) -> str:
    if client == "pinecone-10":
        return importlib.metadata.version("pinecone")
    return pinned(client, "pinecone")


@pytest.mark.parametrize("client", CLIENTS)
def test_pinecone_client_flow(
    client: str,
    platform: Platform,
    control_plane_server: Server,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    python = sys.executable if client == "pinecone-10" else venvs.get(client).python
    tenant = platform.tenant()
    key = tenant.key(scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])
    name = unique("compat")
    # The tenant also has an index on a dedicated cluster (a Qdrant one: the fastest to
    # provision), which every client must list and describe beside the serverless one.
    tenant.target = "qdrant"
    try:
        dedicated = tenant.index(unique("byoc"), dimension=4)
        cluster = tenant.dedicated().name
        argv = [str(FLOW), control_plane_server.url, key, name, dedicated.name]
        out = json.loads(run(python, argv, script_env(), tmp_path))
    finally:
        platform.release()

    assert out["version"] == expected_version(client)
    assert client == "pinecone-10" or out["version"].startswith(client.split("-")[1] + ".")
    model = {
        "name": name, "dimension": 3, "metric": "cosine",
        "host": f"{gateway.url}/v1/indexes/{name}",
        "ready": True, "state": "Ready", "deletion_protection": "disabled",
        # As created with ServerlessSpec(cloud="gcp", region="europe-west4"):
        "cloud": "gcp", "region": "europe-west4",
    }  # fmt: skip
    assert out["created"] == (None if client == "pinecone-5" else model)  # 5.x answers None
    assert out["described"] == model
    assert out["dedicated"] == {"name": dedicated.name, "dimension": 4, "environment": cluster}
    assert out["listed_before"] == [dedicated.name]
    assert out["listed"] == sorted([dedicated.name, name])  # by name
    assert out["has_index"] == [True, False]
    assert out["upserted"] == 3
    drama = [
        ["a", 1.0, {"genre": "drama", "year": 2020}],
        ["c", pytest.approx(0.9939, abs=1e-4), {"genre": "drama", "tags": ["x"]}],
    ]
    assert out["query"] == drama
    assert out["fetch"] == {
        "a": {"values": [1.0, 0.0, 0.0], "metadata": {"genre": "drama", "year": 2020}},
        "b": {"values": [0.0, 1.0, 0.0], "metadata": {"genre": "comedy", "year": 2021}},
    }
    assert out["fetch_updated"] == {
        "a": {"values": [0.0, 0.0, 1.0], "metadata": {"genre": "comedy", "year": 2020}}
    }
    assert out["query_updated"] == drama[1:]
    assert out["fetch_after_delete"] == ["a", "c"]
    assert out["stats"] == {"total_vector_count": 2, "dimension": 3, "namespaces": {"": 2}}
    assert out["has_index_after_delete"] is False
    assert out["listed_after_delete"] == [dedicated.name]
    row = Index.objects.unscoped().get(tenant=tenant.tenant, name=name)
    assert (row.status, row.cloud, row.region) == ("deleted", "gcp", "europe-west4")


# ============================================================================ integrations


@dataclass
class Example:
    install: str
    code: str
    output: str


FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_example(name: str) -> Example:
    """The README's example for `name`: after `<!-- compat-test: name -->`, its `sh` block
    (the pip install), its `python` block and the `text` block of what it prints."""
    readme = (REPO / "README.md").read_text()
    marker = f"<!-- compat-test: {name} -->\n"
    assert readme.count(marker) == 1, marker
    blocks = FENCE.findall(readme, readme.index(marker))[:3]
    assert [kind for kind, _ in blocks] == ["sh", "python", "text"], blocks
    return Example(install=blocks[0][1].strip(), code=blocks[1][1], output=blocks[2][1])


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_integration_readme_example(
    integration: str,
    platform: Platform,
    control_plane_server: Server,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    example = readme_example(integration)
    # What the README tells to install is what the venv has.
    assert example.install == f"pip install {venvs.requirements(integration).read_text().strip()}"
    venv = venvs.get(integration)
    resolved = venv.versions()
    assert int(resolved["pinecone"].split(".")[0]) in INTEGRATION_CLIENTS[integration], resolved
    tenant = platform.tenant()
    key = tenant.key(scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])
    script = tmp_path / f"{integration}_example.py"
    script.write_text(example.code)

    printed = run(
        venv.python, [str(script)],
        script_env(PINECONE_API_KEY=key, PINECONE_CONTROLLER_HOST=control_plane_server.url),
        tmp_path,
    )  # fmt: skip

    assert printed == example.output, f"pinecone {resolved['pinecone']}:\n{printed}"
    created = Index.objects.unscoped().filter(tenant=tenant.tenant)
    assert [(i.name, i.status) for i in created] == [(f"{integration}-docs", "deleted")]


def test_environments_are_the_ones_documented() -> None:
    """Every venv has its requirements file, and each README example names its own."""
    assert venvs.names() == set(ENVIRONMENTS)
    for name in INTEGRATIONS:
        assert readme_example(name).install.startswith("pip install ")
