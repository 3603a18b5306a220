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
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from cogviz import lessons

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: pictures (image/png outputs) each lesson shows when run top to bottom
PICTURES = {
    "01_image_conditioning_preparation": 5,
    "02_the_embedded_toy_model": 6,
    "03_latent_space_encoding": 7,
    "04_channel_concatenation": 8,
    "05_i2v_generation": 2,
    "06_the_diffusion_math": 2,
    "07_visual_anchor_ablations": 6,
    "08_the_image_in_training": 2,
    "09_cogvideox_1_0_and_1_5": 1,
    "10_where_the_anchor_is_read": 5,
    "11_where_each_frame_looks": 8,
    "12_other_ways_to_condition": 6,
    "13_sweeps": 5,
}
#: what a reader who worked each exercise out writes into the lesson's cell tagged "answer" (the
#: lessons ship it unanswered); the tests run every lesson with these and expect its check to pass
ANSWERS = {
    "01_image_conditioning_preparation": "s = max(720 / 1200, 480 / 360)\nmy_answer = 100 * (1 - (720 / s) / 1200)",
    "02_the_embedded_toy_model": "my_latent_shape = ((17 - 1) // 4 + 1, 16, 64 // 8, 96 // 8)\nmy_transformer_channels = 16 + 16",
    "03_latent_space_encoding": "my_shape = ((49 - 1) // 4 + 1, 16, 480 // 8, 720 // 8)\nmy_zero_frames = my_shape[0] - 1",
    "04_channel_concatenation": "my_frames = [0]",
    "05_i2v_generation": 'my_answer = "further"',
    "06_the_diffusion_math": "my_b = -1.0",
    "07_visual_anchor_ablations": 'my_prediction = "late"',
    "08_the_image_in_training": 'my_prediction = "not zero"',
    "09_cogvideox_1_0_and_1_5": "my_numbers = 2 * 2 * 2 * 32",
    "10_where_the_anchor_is_read": 'my_prediction = "early"',
    "11_where_each_frame_looks": 'my_prediction = "direct"',
    "12_other_ways_to_condition": 'my_prediction = "constant"',
    "13_sweeps": "my_computed = 3 + 6\nmy_skipped = 15",
}
FIGURE_AS_TEXT = re.compile(r"<(matplotlib\.figure\.)?Figure size [\d.]+x[\d.]+ with \d+ Axes>|<cogviz Picture")


def test_there_are_lessons():
    assert any(p.name.startswith("01_") for p in NOTEBOOKS)
    assert {p.stem for p in NOTEBOOKS} == set(PICTURES), "add the new lesson's picture count to PICTURES"
    assert set(ANSWERS) == set(PICTURES), "add the new lesson's exercise answers to ANSWERS"


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
def test_notebook_runs_and_shows_its_pictures(path, executed_lessons):
    # deselected where test_browser.py runs the same lesson in JupyterLab (see conftest.py)
    nb = lessons.run(path, answers=ANSWERS[path.stem])  # raises CellExecutionError, naming the cell
    check_executed(nb, path.stem)
    nbformat.write(nb, executed_lessons / path.name)


def check_executed(nb, stem: str, answered: bool = True) -> None:
    """What a run of lesson ``stem`` must show: no error, its pictures, none of them as text, and its
    exercise's check saying "correct" (run with the answers) or "not answered yet" (without)."""
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{stem}: {errors[0]}"
    unrun = [c.source[:60] for c in nb.cells if c.cell_type == "code" and c.source.strip()
             and not c.get("execution_count")]
    assert not unrun, f"{stem}: cells that did not run: {unrun}"
    pictures, as_text = shown(nb)
    assert not as_text, f"{stem} shows pictures as text: {as_text}"
    assert pictures == PICTURES[stem], f"{stem} shows {pictures} pictures, expected {PICTURES[stem]}"
    said = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type == "stream"]
    noise = [o.get("text", "")[:120] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if o.output_type == "stream" and o.get("name") == "stderr"]
    assert not noise, f"{stem}: a cell shows warnings or logs (stderr) to the reader: {noise}"
    echoed = [c.source[:40] for c in nb.cells if c.cell_type == "code" and "check(" in c.source
              for o in c.get("outputs", []) if o.output_type == "execute_result"]
    assert not echoed, f"{stem}: the exercise's check cell also shows its return value: {echoed}"
    expected = "correct: " if answered else lessons.NOT_ANSWERED
    assert any(line.startswith(expected) for text in said for line in text.splitlines()), \
        f"{stem}: the exercise's check did not say {expected!r}"


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
        check_executed(nb, "05_i2v_generation")
    pictures = nbformat.v4.new_code_cell("pictures")
    pictures.execution_count = 2
    pictures.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})] * PICTURES["05_i2v_generation"]
    nb.cells = [ok, pictures]
    with pytest.raises(AssertionError, match="did not say 'correct: '"):
        check_executed(nb, "05_i2v_generation")
    ok.outputs = [nbformat.v4.new_output("stream", name="stdout", text="correct: further\n")]
    check_executed(nb, "05_i2v_generation")
    echo = nbformat.v4.new_code_cell("check({}, lambda: None, 'x')")
    echo.execution_count = 3
    echo.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "True"}, execution_count=3)]
    nb.cells = [ok, pictures, echo]
    with pytest.raises(AssertionError, match="also shows its return value"):
        check_executed(nb, "05_i2v_generation")
    warned = nbformat.v4.new_code_cell("build()")
    warned.execution_count = 4
    warned.outputs = [nbformat.v4.new_output("stream", name="stderr", text="There are modules in ...\n")]
    nb.cells = [ok, pictures, warned]
    with pytest.raises(AssertionError, match="stderr"):
        check_executed(nb, "05_i2v_generation")
    nb.cells = [ok, pictures]
    with pytest.raises(AssertionError, match="did not say 'not answered yet'"):
        check_executed(nb, "05_i2v_generation", answered=False)
    nb.cells = [nbformat.v4.new_code_cell("y")]
    with pytest.raises(AssertionError, match="did not run"):
        check_executed(nb, "05_i2v_generation")
    ok.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    nb.cells = [ok]
    with pytest.raises(AssertionError, match="ValueError"):
        check_executed(nb, "05_i2v_generation")


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_exercise_ships_unanswered_and_the_answers_fill_its_cell(path):
    import ast

    cells = lessons.answer_cells(nbformat.read(path, as_version=4))
    assert len(cells) == 1, f"{path.name}: one cell tagged 'answer', found {len(cells)}"
    shipped = ast.parse(cells[0].source).body
    assert shipped and all(isinstance(a, ast.Assign) and isinstance(a.value, ast.Constant) and a.value.value is None
                           for a in shipped), f"{path.name} ships its answer filled in: {cells[0].source!r}"
    names = {t.id for a in shipped for t in a.targets}
    answered = {t.id for a in ast.parse(ANSWERS[path.stem]).body if isinstance(a, ast.Assign) for t in a.targets}
    assert names <= answered, f"ANSWERS[{path.stem!r}] leaves {names - answered} unset"


def test_check_says_not_answered_yet_then_judges(capsys):
    computed = []
    assert lessons.check({"a": None, "b": 2}, lambda: computed.append(1), "right") is None
    assert capsys.readouterr().out.startswith("not answered yet: set a in the cell above") and not computed
    assert lessons.check({"a": 1}, lambda: None, "it is 1") is True
    assert capsys.readouterr().out == "correct: it is 1\n"
    with pytest.raises(AssertionError, match="not quite: the maps say 2"):
        lessons.check({"a": 1}, lambda: "the maps say 2", "unused")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = None", metadata={"tags": ["answer"]})]
    assert lessons.with_answers(nb, "a = 1").cells[0].source == "a = 1"
    nb.cells.append(nbformat.v4.new_code_cell("b = None", metadata={"tags": ["answer"]}))
    with pytest.raises(ValueError, match="this one has 2"):
        lessons.with_answers(nb, "a = 1")
