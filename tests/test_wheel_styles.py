"""A plain (non-editable) wheel install finds the shipped MT styles without the source tree.

Builds the wheel, installs it with ``--no-deps`` into a throwaway venv whose other packages come from the test
environment (a ``.pth`` line), and lists the styles from there with ``IMPASTO_STYLES_DIR`` unset.
"""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (REPO / "weights" / "styles").glob("*.safetensors"))


@pytest.mark.skipif(not SHIPPED, reason="no shipped styles in weights/styles")
def test_wheel_install_lists_shipped_styles(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheel_dir)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("impasto-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # dependencies (torch, safetensors ...) from the test environment, after the venv's own site-packages
    sp = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                      text=True).strip())
    (sp / "zz_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("IMPASTO_STYLES_DIR", "PYTHONPATH")}
    env["IMPASTO_DATA_DIR"] = str(tmp_path / "user")         # no user styles
    code = ("import json, impasto; from impasto.engines.mt.styles import list_styles, shipped_styles_dir;"
            "print(json.dumps({'module': impasto.__file__, 'dir': str(shipped_styles_dir()),"
            "'styles': [[s.name, s.source, s.ok] for s in list_styles()]}))")
    out = json.loads(subprocess.check_output([str(py), "-c", code], text=True, env=env, cwd=tmp_path))
    assert Path(out["module"]).is_relative_to(env_dir), out["module"]          # the wheel's copy, not the checkout
    assert Path(out["dir"]) == env_dir / "share" / "impasto" / "styles"
    assert out["styles"] == [[name, "shipped", True] for name in SHIPPED]
