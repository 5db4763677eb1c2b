"""The layout rules of DESIGN.md that code can check: who may import what."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The only modules of client_sdk that may import torch (lazily, from watch()).
TORCH_MODULES = {"_torch_watch.py", "_system.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_client_sdk_imports_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"client_sdk"}
    for path in sorted((ROOT / "client_sdk").rglob("*.py")):
        extra = _imports(path) - allowed
        if path.name in TORCH_MODULES or path.name.startswith("_torch"):
            extra -= {"torch", "pynvml"}
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_importing_client_sdk_pulls_in_no_server_and_no_heavy_library():
    code = (
        "import sys, client_sdk; "
        "bad = {'server', 'worker', 'fastapi', 'sqlalchemy', 'numpy', 'torch'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_diagnosis_rules_do_no_io():
    forbidden = {"sqlalchemy", "celery", "redis", "server", "requests", "urllib", "socket"}
    for path in sorted((ROOT / "worker" / "diagnosis").rglob("*.py")):
        assert not (_imports(path) & forbidden), f"{path.relative_to(ROOT)} does I/O imports"


def test_server_never_imports_celery_internals():
    for path in sorted((ROOT / "server").rglob("*.py")):
        assert "celery" not in _imports(path), f"{path.relative_to(ROOT)} imports celery"


def test_server_reaches_the_worker_only_through_the_rules_and_the_enqueue_seam():
    for path in sorted((ROOT / "server").rglob("*.py")):
        allowed = {"worker.diagnosis", "worker.enqueue"}
        if path.name == "cli.py":  # `losslens worker` starts the Celery worker process
            allowed.add("worker.celery_app")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mod = node.module
                if mod.split(".")[0] == "worker":
                    assert any(mod == a or mod.startswith(a + ".") for a in allowed), (
                        f"{path.relative_to(ROOT)} imports {mod}"
                    )
