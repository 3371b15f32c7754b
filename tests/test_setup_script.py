"""scripts/setup.sh finds a real Python 3.10 even where `python3.10` is a pyenv shim that refuses to run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def find_python(project_root, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", 'source scripts/setup.sh && find_python310'],
        cwd=project_root, env=env, capture_output=True, text=True, timeout=60,
    )


def is_310(path: str) -> bool:
    out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    return out.stdout.strip() == "(3, 10)"


def test_explicit_python_is_used(project_root):
    result = find_python(project_root, {**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0 and result.stdout.strip() == sys.executable


def test_a_refusing_shim_on_path_is_skipped(project_root, tmp_path):
    shim = tmp_path / "python3.10"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYENV_VERSION")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    if not shutil.which("pyenv", path=env["PATH"]):
        pytest.skip("no pyenv on this machine to fall back to")
    result = find_python(project_root, env)
    assert result.returncode == 0, result.stderr
    found = result.stdout.strip()
    assert found != str(shim) and is_310(found)


def test_a_working_python310_on_path_is_preferred(project_root, tmp_path):
    link = tmp_path / "python3.10"
    link.symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    result = find_python(project_root, env)
    assert result.returncode == 0 and result.stdout.strip() == str(link)
