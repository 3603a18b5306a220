"""`make figures` renders the README's pictures from the toy model; the committed ones are current."""
from pathlib import Path

import numpy as np
from PIL import Image

from cogviz.figures import FIGURES, render_figures

ROOT = Path(__file__).resolve().parents[1]


def test_readme_figures_are_rendered_current_and_used(tmp_path):
    written = render_figures(tmp_path)
    assert [p.name for p in written] == list(FIGURES)
    readme = (ROOT / "README.md").read_text()
    for name in FIGURES:
        fresh = np.asarray(Image.open(tmp_path / name).convert("RGB")).astype(np.float64)
        committed = np.asarray(Image.open(ROOT / "docs" / "figures" / name).convert("RGB")).astype(np.float64)
        assert fresh.shape == committed.shape, f"{name} changed size: run make figures"
        mse = ((fresh - committed) ** 2).mean()
        assert mse == 0 or 10 * np.log10(255**2 / mse) > 35, f"{name} is out of date: run make figures"
        assert f"docs/figures/{name}" in readme, f"the README does not show {name}"


def test_the_first_picture_of_the_readme_and_the_site_shows_what_the_model_does_well():
    import re

    for page, prefix in ((ROOT / "README.md", "docs/figures/"), (ROOT / "docs" / "index.md", "figures/")):
        first = re.search(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()).group(1)
        assert first == prefix + "held_and_moved.png", f"{page.name} opens with {first}"
