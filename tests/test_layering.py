"""The layering of shared/DESIGN.md: policies/ knows nothing of the simulator or of navctl,
envs/ nothing of torch, the policies or navctl. Checked on the source (every import statement,
also those inside functions) and on what importing each package really loads."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "policies": {"envs", "navctl", "pybullet", "pybullet_data", "gymnasium"},
    "envs": {"torch", "policies", "navctl"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level package names of every absolute import in a Python file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_a_forbidden_package(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offending = {str(f.relative_to(REPO)): sorted(imported_packages(f) & FORBIDDEN[package]) for f in files}
    assert {f: bad for f, bad in offending.items() if bad} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import numpy\ndef f():\n    from envs.robot import V_MAX\n    import torch.nn as nn\n")
    assert imported_packages(source) == {"numpy", "envs", "torch"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_every_module_loads_no_forbidden_package(package):
    modules = [".".join(f.relative_to(REPO).with_suffix("").parts) for f in sorted((REPO / package).rglob("*.py"))]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) & FORBIDDEN[package] == set()
