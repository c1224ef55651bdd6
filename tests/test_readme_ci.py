"""README.md's two commands are what .ci/run executes: check that .ci/run finds them and that they are the
documented ones (install + demo; the test suite)."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_command(name: str) -> str:
    script = (ROOT / ".ci" / "run").read_text()
    func = script[script.index("readme_command() {"):script.index("}\n", script.index("readme_command() {")) + 2]
    out = subprocess.run(["bash", "-c", f"{func}\nreadme_command {name}"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_ci_runs_the_readme_install_command():
    cmd = readme_command("install")
    assert "pip install -e '.[test]'" in cmd
    assert "impasto stylize --demo" in cmd
    assert cmd in (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    cmd = readme_command("test")
    assert "pytest" in cmd
    assert cmd in (ROOT / "README.md").read_text()
