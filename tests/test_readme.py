"""The README is a front page: short, and every Python block in it runs as written, in order, from
the repository root (as a reader pastes them into one session)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 200
    for link in re.findall(r"\]\((docs/[^)#]+)", README):  # the guide pages and pictures it points to exist
        assert (ROOT / link).exists(), link


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path):
    blocks = python_blocks(README)
    assert len(blocks) >= 6, "the tour has a block per step"
    (tmp_path / "cogviz").symlink_to(ROOT / "cogviz")  # the blocks' relative paths, cogviz/samples/...
    script = "\n".join(f"print('--- block {i}')\n{b}" for i, b in enumerate(blocks))
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    assert "55.6% cropped" in out and "(1, 5, 16, 8, 12)" in out and "(17, 64, 96, 3) (2, 5, 32, 8, 12)" in out
    assert (tmp_path / "build" / "readme-sweep" / "manifest.json").exists()
