"""environment.yml and pyproject.toml list the same dependencies; the CLI behaves."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "ray-default": "ray"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    import yaml

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(s) for s in py["dependencies"]}
    for extra in ("notebook", "test"):
        wanted |= {_name(s) for s in py["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(s) for s in dep["pip"]}
        else:
            n = _name(dep)
            if n not in ("python", "pip"):
                have.add(CONDA_TO_PIP.get(n, n))
    assert wanted == have, f"only in pyproject: {wanted - have}; only in environment.yml: {have - wanted}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make lab") < readme.index("make test") < 1500  # the two commands come first


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cogviz.cli", *args], capture_output=True, text=True)


def test_cli_fit_and_errors(tmp_path):
    from cogviz.samples import sample_path

    out = tmp_path / "fitted.png"
    r = run_cli("fit", str(sample_path("lighthouse")), "--mode", "pad", "--out", str(out))
    assert r.returncode == 0 and "pad 400x600 -> 720x480" in r.stdout and out.exists()
    r = run_cli("fit", str(tmp_path / "missing.png"), "--out", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file" in r.stderr
    r = run_cli("fit", "x.png", "--size", "big", "--out", str(out))
    assert r.returncode == 2 and "HEIGHTxWIDTH" in r.stderr and "Traceback" not in r.stderr
    assert "fit" in run_cli("--help").stdout
