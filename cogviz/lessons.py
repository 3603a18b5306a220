"""The lessons' exercises and how a lesson runs, for readers, the tests and the documentation site.

Each lesson ships its exercise unanswered: the cell tagged ``answer`` sets the reader's answers to
``None``, and the check cell after it calls :func:`check`, which says "not answered yet" instead
of failing until the reader fills them in. :func:`run` executes a lesson top to bottom, optionally
with answers put into its ``answer`` cells (how the tests check that the exercises work).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ANSWER_TAG = "answer"  #: the tag of the cell where a lesson's reader writes the exercise's answers
NOT_ANSWERED = "not answered yet"


def check(answers: dict[str, Any], wrong: Callable[[], str | None], correct: str) -> bool | None:
    """An exercise's check. ``answers`` maps each answer's name to the reader's value (``None``: not
    given yet): while one is missing, it says so and returns None. Otherwise ``wrong()`` returns None
    when the answers are right (``correct`` is printed, True returned) or what is wrong, which fails
    the check with an ``AssertionError`` saying so."""
    missing = [name for name, value in answers.items() if value is None]
    if missing:
        print(f"{NOT_ANSWERED}: set {', '.join(missing)} in the cell above, then run this cell again")
        return None
    why = wrong()
    if why:
        raise AssertionError(f"not quite: {why}")
    print(f"correct: {correct}")
    return True


def answer_cells(nb) -> list:
    """The cells of notebook ``nb`` (an nbformat node) tagged ``answer``."""
    return [c for c in nb.cells if ANSWER_TAG in c.get("metadata", {}).get("tags", [])]


def with_answers(nb, answers: str):
    """``nb`` with its (single) ``answer`` cell's source replaced by ``answers``."""
    cells = answer_cells(nb)
    if len(cells) != 1:
        raise ValueError(f"a lesson has one cell tagged {ANSWER_TAG!r}; this one has {len(cells)}")
    cells[0].source = answers
    return nb


def run(path: str | Path, *, answers: str | None = None, timeout: int = 600):
    """Execute the lesson at ``path`` top to bottom in a fresh python3 kernel (its folder as the
    working directory, ``MPLBACKEND`` left as a user's) and return the executed notebook; with
    ``answers``, that code replaces the lesson's ``answer`` cell first. A failing cell raises
    nbclient's ``CellExecutionError``, naming it."""
    import os

    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if answers is not None:
        with_answers(nb, answers)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    old = os.environ.pop("MPLBACKEND", None)
    try:
        client.execute(env=env)
    finally:
        if old is not None:
            os.environ["MPLBACKEND"] = old
    return nb
