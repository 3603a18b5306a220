"""environment.yml and pyproject.toml list the same dependencies; the CLI behaves."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def _floors() -> tuple[dict, dict]:
    """The lower bound each file sets, by pip name: (pyproject, environment.yml)."""
    import yaml

    def floor(spec):
        m = re.search(r">=\s*([0-9][0-9.]*)", spec)
        return m.group(1) if m else None

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(py["dependencies"]) + [s for v in py["optional-dependencies"].values() for s in v]
    pip = {_name(s): floor(s) for s in specs}
    conda = {}
    for dep in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]:
        for s in dep["pip"] if isinstance(dep, dict) else [dep]:
            n = _name(s)
            conda[CONDA_TO_PIP.get(n, n)] = floor(s)
    return pip, conda


# versions with published remote-code-execution or credential-leak bugs that the floors must exclude
# (issue 43): Ray's Jobs API RCE before token auth (2.52; cogviz's recipe is tested on 2.60), torch's
# weights_only bypass (< 2.6) and unpickler memory corruption (< 2.10), pyarrow's Parquet RCE in
# 14.0.0, requests' .netrc leak (< 2.32.4)
SECURITY_FLOORS = {"ray": "2.60", "torch": "2.10", "pyarrow": "14.0.1", "requests": "2.32.4"}


def test_dependency_floors_exclude_known_vulnerable_versions_and_agree():
    from packaging.version import Version

    pip, conda = _floors()
    for name, least in SECURITY_FLOORS.items():
        for where, floors in (("pyproject.toml", pip), ("environment.yml", conda)):
            assert floors.get(name) and Version(floors[name]) >= Version(least), (where, name, floors.get(name))
    for name in set(pip) & set(conda):
        assert pip[name] == conda[name], f"{name}: pyproject >= {pip[name]}, environment.yml >= {conda[name]}"


def test_the_docs_build_deletes_only_its_own_staging_folder(tmp_path):
    """Issue 43: ``docs/build.py --out X`` stages into X/.cogviz-docs-src and deletes a folder there
    only when it carries the build's marker: a user's folder in the way is an error, not a loss."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import build
    finally:
        sys.path.pop(0)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mine.py").write_text("keep me")
    mine = tmp_path / build.STAGING
    mine.mkdir()
    (mine / "notes.md").write_text("keep me too")
    with pytest.raises(SystemExit, match="not a staging folder"):
        build.fresh_staging(mine)
    assert (mine / "notes.md").exists() and (tmp_path / "src" / "mine.py").exists()
    (mine / build.MARKER).write_text("")
    build.fresh_staging(mine)
    assert not mine.exists() and (tmp_path / "src" / "mine.py").exists()


def test_cli_fit_to_an_unknown_format_is_one_line(tmp_path):
    from cogviz.samples import sample_path

    r = run_cli("fit", str(sample_path("lighthouse")), "--out", str(tmp_path / "x.xyz"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and ".xyz is not an image format" in r.stderr
    r = run_cli("fit", str(sample_path("lighthouse")), "--out", str(tmp_path / "no-such-dir" / "x.png"))
    assert r.returncode == 1 and r.stderr.startswith("cogviz: error: unexpected FileNotFoundError")


def test_cli_memory_choices_are_load_pipelines():
    """Issue 42: the CLI's --memory choices were typed by hand twice and lacked group_offload."""
    from cogviz.cli import build_parser
    from cogviz.models import MEMORY_OPTIONS

    parser = build_parser()
    for command in ("generate", "sweep"):
        sub = parser._subparsers._group_actions[0].choices[command]
        memory = next(a for a in sub._actions if a.dest == "memory")
        assert tuple(memory.choices) == MEMORY_OPTIONS and "group_offload" in memory.choices
