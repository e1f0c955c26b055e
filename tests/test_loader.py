"""`import relu_ext` fails with a message that says what is wrong and how to fix it."""
import os
import shutil
import subprocess
import sys

import relu_ext


def run_python(code, cwd=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_built_against_another_torch(tmp_path):
    run = run_python("import torch; torch.__version__ = '1.0.0'; import relu_ext", cwd=tmp_path)
    assert run.returncode != 0
    assert "ImportError: relu_ext was built against torch" in run.stderr
    assert "but torch 1.0.0 is installed" in run.stderr and "pip install --no-build-isolation" in run.stderr


def test_missing_compiled_part(tmp_path):
    package = tmp_path / "relu_ext"
    package.mkdir()
    for name in os.listdir(os.path.dirname(relu_ext.__file__)):
        if name.endswith(".py"):
            shutil.copy(os.path.join(os.path.dirname(relu_ext.__file__), name), package / name)
    (tmp_path / "csrc").mkdir()  # looks like a source checkout without a build
    run = run_python("import relu_ext", cwd=tmp_path)
    assert run.returncode != 0
    assert "relu_ext._C) could not be loaded: it is missing" in run.stderr
    assert "source folder" in run.stderr and "pip install --no-build-isolation" in run.stderr


def test_stale_in_place_build(tmp_path):
    source = os.path.dirname(relu_ext.__file__)
    package = tmp_path / "relu_ext"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "relu.cpp").write_text("// edited since the build\n")
    run = run_python("import relu_ext", cwd=tmp_path)
    assert run.returncode != 0
    assert "stale" in run.stderr and "pip install --no-build-isolation -e ." in run.stderr
