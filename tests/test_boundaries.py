"""The import boundaries between the parts (docs/ARCHITECTURE.md), beside the import-linter
contracts in pyproject.toml that `make lint` checks:

- no part uses another top-level package's `_private` names (from-imports, or attributes of an
  imported first-party module), outside tests and migrations;
- importing the gateway's app in a fresh interpreter loads no Django, no control-plane app and
  no engine client the gateway does not use.

Pure: no database, no server.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vectorplane", "controlplane", "tenants", "provisioning", "billing", "gateway", "infra")
SKIPPED_DIRS = {"tests", "migrations"}


def _sources() -> list[Path]:
    found: list[Path] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                found.append(path)
    return found


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_of(p) for p in _sources()}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_uses(path: Path) -> list[str]:
    """`file:line name` for each use of another top-level package's private name."""
    module = _module_of(path)
    top = module.split(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    aliases: dict[str, str] = {}  # local name -> first-party module of another package
    found: list[str] = []
    where = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES and alias.name.split(".")[0] != top:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{where}:{node.lineno} {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path.name == "__init__.py")
            if source.split(".")[0] not in PACKAGES or source.split(".")[0] == top:
                continue
            if any(_private(part) for part in source.split(".")):
                found.append(f"{where}:{node.lineno} {source}")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{where}:{node.lineno} {source}.{alias.name}")
                elif f"{source}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
        ):
            found.append(f"{where}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_part_uses_another_packages_private_names() -> None:
    found = [use for path in _sources() for use in private_uses(path)]
    assert found == [], "private names used across packages:\n" + "\n".join(found)


def test_the_private_name_check_sees_each_form() -> None:
    probe = ROOT / "provisioning" / "_boundary_probe.py"
    probe.write_text(
        "from tenants.services import _lock_tenant, tenant_create\n"
        "from tenants import services\n"
        "import tenants.admin as tadmin\n"
        "from . import models\n"
        "services._require_role\n"
        "tadmin._actor\n"
        "services.__name__\n"
        "models._meta\n",
        encoding="utf-8",
    )
    try:
        uses = [u.split(" ", 1)[1] for u in private_uses(probe)]
    finally:
        probe.unlink()
    assert uses == [
        "tenants.services._lock_tenant",
        "tenants.services._require_role",
        "tenants.admin._actor",
    ]


FORBIDDEN_IN_GATEWAY = (
    "django", "rest_framework", "tenants", "provisioning", "billing", "controlplane", "infra",
    "qdrant_client", "celery", "pulumi", "kubernetes", "httpx", "stripe",
)  # fmt: skip


def test_importing_the_gateway_loads_no_control_plane_and_no_unused_engine_client() -> None:
    code = (
        "import json, sys\n"
        "import gateway.app\n"
        "assert callable(gateway.app.application) or gateway.app.application is not None\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.splitlines()[-1])
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN_IN_GATEWAY)
    assert bad == [], f"gateway.app loaded {bad}"
    assert "gateway.backends.qdrant" in loaded and "gateway.backends.pgvector" in loaded
