"""The lessons run top to bottom, show their pictures, stay paired with their .py twins, and carry no
outputs in git.

What a reader sees is checked on the executed notebook: no output is a figure shown as text (a
``<Figure size ...>`` line where a picture should be), and each lesson shows exactly the number of
pictures (``image/png`` outputs) it is written to show. The kernel runs as a user's does: no
``MPLBACKEND`` is forced, so nothing passes only because of a test-only backend.

Each lesson runs once per test session: where ``tests/test_browser.py`` runs it in JupyterLab, that
test applies :func:`check_executed` to the notebook JupyterLab saved, and the headless run here is
deselected (``conftest.py``); with ``-m "not browser"`` the headless runs below take over.
"""
import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: pictures (image/png outputs) each lesson shows when run top to bottom
PICTURES = {
    "01_image_conditioning_preparation": 5,
    "02_latent_space_encoding": 7,
    "03_channel_concatenation": 8,
    "04_i2v_generation": 2,
    "05_the_embedded_toy_model": 5,
    "06_visual_anchor_ablations": 6,
    "07_sweeps": 3,
    "08_where_the_anchor_is_read": 5,
}
FIGURE_AS_TEXT = re.compile(r"<(matplotlib\.figure\.)?Figure size [\d.]+x[\d.]+ with \d+ Axes>|<cogviz Picture")


def test_there_are_lessons():
    assert any(p.name.startswith("01_") for p in NOTEBOOKS)
    assert {p.stem for p in NOTEBOOKS} == set(PICTURES), "add the new lesson's picture count to PICTURES"


def shown(nb) -> tuple[int, list[str]]:
    """(number of image/png outputs, the text/plain of outputs that are a picture shown as text)."""
    pictures, as_text = 0, []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            data = o.get("data", {})
            if "image/png" in data:
                pictures += 1
            elif FIGURE_AS_TEXT.search(data.get("text/plain", "")):
                as_text.append(data["text/plain"])
            if o.output_type == "stream" and FIGURE_AS_TEXT.search(o.get("text", "")):
                as_text.append(o["text"])
    return pictures, as_text


def test_figure_as_text_is_detected():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "<Figure size 1000x256.757 with 1 Axes>"},
                                           execution_count=1)]
    nb.cells = [cell]
    assert shown(nb) == (0, ["<Figure size 1000x256.757 with 1 Axes>"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_pictures(path, tmp_path):
    # deselected where test_browser.py runs the same lesson in JupyterLab (see conftest.py)
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    old = os.environ.pop("MPLBACKEND", None)
    try:
        client.execute(env=env)  # raises CellExecutionError, naming the cell, when one fails
    finally:
        if old is not None:
            os.environ["MPLBACKEND"] = old
    check_executed(nb, path.stem)


def check_executed(nb, stem: str) -> None:
    """What a run of lesson ``stem`` must show: no error, its pictures, none of them as text."""
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{stem}: {errors[0]}"
    unrun = [c.source[:60] for c in nb.cells if c.cell_type == "code" and c.source.strip()
             and not c.get("execution_count")]
    assert not unrun, f"{stem}: cells that did not run: {unrun}"
    pictures, as_text = shown(nb)
    assert not as_text, f"{stem} shows pictures as text: {as_text}"
    assert pictures == PICTURES[stem], f"{stem} shows {pictures} pictures, expected {PICTURES[stem]}"


def test_parameters_cell_is_tagged():
    for path in NOTEBOOKS:  # the one cell a reader edits to rerun the lesson with other settings
        nb = nbformat.read(path, as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name}: no cell tagged 'parameters'"


def test_check_executed_catches_errors_unrun_cells_and_missing_pictures():
    nb = nbformat.v4.new_notebook()
    ok = nbformat.v4.new_code_cell("x")
    ok.execution_count = 1
    nb.cells = [ok]
    with pytest.raises(AssertionError, match="shows 0 pictures"):
        check_executed(nb, "04_i2v_generation")
    nb.cells = [nbformat.v4.new_code_cell("y")]
    with pytest.raises(AssertionError, match="did not run"):
        check_executed(nb, "04_i2v_generation")
    ok.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    nb.cells = [ok]
    with pytest.raises(AssertionError, match="ValueError"):
        check_executed(nb, "04_i2v_generation")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paired_py_is_in_sync(path):
    py = path.with_suffix(".py")
    assert py.exists(), f"{py.name} is missing: run jupytext --sync {path.name}"
    a, b = jupytext.read(path), jupytext.read(py)
    strip = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert strip(a) == strip(b), f"{path.name} and {py.name} differ: run jupytext --sync"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{path.name} has stored outputs"
