"""The prebuilt JupyterLab extension: where the package says it is, what the wheel maps, and the
version ranges it asks JupyterLab for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import headscope

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_JSON = json.loads((ROOT / "package.json").read_text())

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_labextension_paths_point_at_the_built_extension() -> None:
    paths = headscope._jupyter_labextension_paths()
    assert paths == [{"src": "labextension", "dest": "headscope"}]
    built = Path(headscope.__file__).parent / paths[0]["src"]
    meta = json.loads((built / "package.json").read_text())
    assert meta["name"] == paths[0]["dest"] == PACKAGE_JSON["name"]
    # what JupyterLab loads: the federated entry point and the style module, both present
    assert (built / meta["jupyterlab"]["_build"]["load"]).is_file()
    assert (built / "static" / "style.js").is_file()


def test_the_wheel_ships_the_extension_where_jupyterlab_looks() -> None:
    out = PACKAGE_JSON["jupyterlab"]["outputDir"]
    shared = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared[out] == f"share/jupyter/labextensions/{PACKAGE_JSON['name']}"
    assert shared["install.json"] == f"share/jupyter/labextensions/{PACKAGE_JSON['name']}/install.json"
    install = json.loads((ROOT / "install.json").read_text())
    assert install["packageName"] == PYPROJECT["project"]["name"]
    assert "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt" in PYPROJECT["project"]["classifiers"]
    assert any(r.startswith("jupyterlab") for r in PYPROJECT["build-system"]["requires"])
    targets = PYPROJECT["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]["ensured-targets"]
    assert f"{out}/package.json" in targets


def test_shared_packages_ask_for_the_lowest_supported_jupyterlab() -> None:
    # the ranges JupyterLab's singletons must satisfy are the package's own dependency ranges
    deps = PACKAGE_JSON["dependencies"]
    shared = PACKAGE_JSON["jupyterlab"]["sharedPackages"]
    assert set(shared) == set(deps)
    for name, spec in shared.items():
        assert spec == {"bundled": False, "singleton": True, "requiredVersion": deps[name]}, name
    assert deps["@jupyterlab/application"] == "^4.2.0"
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@jupyterlab/application"]["version"].startswith("4.2.")


def test_a_clean_pip_install_lists_the_extension_enabled_and_ok(tmp_path: Path) -> None:
    """`pip install .` from a copy of the source (the wheel carries the prebuilt extension),
    into a fresh environment: `jupyter labextension list` shows headscope enabled and OK."""
    import os
    import shutil
    import subprocess
    import venv

    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", "node_modules", "artifacts", "results", ".build", "__pycache__")
    shutil.copytree(ROOT, source, ignore=ignore)
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HF_HUB_OFFLINE": "1"}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    # `jupyter labextension list` as the fresh environment's Python runs it (the `jupyter`
    # launcher would find the system's `jupyter-labextension` on PATH instead)
    lister = "import sys; from jupyterlab.labextensions import main; sys.argv = ['jupyter-labextension', 'list']; main()"
    listed = subprocess.run([str(python), "-c", lister], capture_output=True, text=True, env=env, timeout=120)
    text = listed.stdout + listed.stderr
    section = text.split(str(env_dir / "share" / "jupyter" / "labextensions"), 1)
    assert len(section) == 2, text  # the fresh environment's own folder of extensions is listed
    line = next((row for row in section[1].splitlines() if "headscope" in row), "")
    assert "enabled" in line and "OK" in line, text
    assert (env_dir / "share" / "jupyter" / "labextensions" / "headscope" / "package.json").is_file()
