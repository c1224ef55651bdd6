"""The shape of the code base: no import cycle, no test code inside the product."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "tests" / "check_import_cycles.py"


def test_no_import_cycle_in_backend_shared_or_plugins():
    r = subprocess.run([sys.executable, str(CHECKER)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ", 0 cycle(s)" in r.stdout


def test_the_checker_finds_a_cycle_and_counts_lazy_imports(tmp_path):
    sys.path.insert(0, str(CHECKER.parent))
    try:
        import check_import_cycles as cic
    finally:
        sys.path.remove(str(CHECKER.parent))
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import g\n")          # lazy, inside a function
    (pkg / "c.py").write_text("from pkg.a import x\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    g = cic.graph([tmp_path])
    assert g["pkg.b"] == {"pkg.c"} and g["pkg.d"] == {"pkg.a"}
    assert cic.cycles(g) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_test_only_module_in_the_product():
    product = ROOT / "backend" / "impasto"
    names = {p.stem for p in product.rglob("*.py")}
    assert not {n for n in names if n.startswith("test") or n in ("fuzz", "testing")}, names
    text = "\n".join(p.read_text(encoding="utf-8") for p in product.rglob("*.py"))
    assert "TEST_ENGINES" not in text and "tests.support" not in text


def test_serve_help_has_no_testing_flag():
    r = subprocess.run([sys.executable, "-m", "impasto.cli", "serve", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--stop" in r.stdout
    assert "test" not in r.stdout.lower(), r.stdout
