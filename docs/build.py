"""Build cogviz's documentation site: `make docs` (python docs/build.py), then open build/docs/html/index.html.

1. Stage: docs/ (this folder: guide, API pages, figures) is copied to build/docs/src, with every lesson
   of notebooks/ executed top to bottom on the embedded model, exercises unanswered, as a reader
   first meets them (`--executed DIR` takes notebooks already executed instead, e.g. by the tests:
   each lesson then runs once per test run, not again for the site).
2. Widgets need a live kernel: their outputs become a note saying which widget the lesson shows.
3. Sphinx (MyST-NB, furo) renders it all to build/docs/html; warnings are errors. MathJax comes
   from the local jupyter-server-mathjax package, so the site needs no network.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="cogviz-widget-note">An interactive <code>{name}</code> is shown here when this lesson '
               "runs in JupyterLab (<code>make lab</code>).</p>")


def lessons() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def widget_name(output) -> str | None:
    """The class of a widget output (``ImageFitter(...)``), None for a progress bar (tqdm's text)."""
    match = re.match(r"([A-Za-z_]\w*)\(", output.get("data", {}).get("text/plain", ""))
    return match.group(1) if match else None


def without_widgets(nb):
    """Each widget output replaced by a short HTML note naming the widget (a static page has no kernel);
    progress bars, whose saved state is their first frame, are left out."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                name = widget_name(output)
                if name is None:
                    continue
                output["data"] = {"text/html": WIDGET_NOTE.format(name=name)}
            kept.append(output)
        cell.outputs = kept
    nb.metadata.pop("widgets", None)
    return nb


def lesson_index(paths: list[Path]) -> str:
    entries = "\n".join(p.stem for p in paths)
    return ("# Lessons\n\nEach lesson walks through one step of the image conditioning on the embedded model; "
            "the pages show them as executed by the documentation build. Run them yourself with `make lab`.\n\n"
            f"```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n")


STAGING = ".cogviz-docs-src"  #: the staging folder's name inside --out
MARKER = ".cogviz-staging"  #: the file that marks a folder as this script's staging folder


def fresh_staging(src: Path) -> None:
    """Empty the staging folder ``src`` for a new build: only a folder this script made (it holds
    :data:`MARKER`) is ever deleted; anything else in the way is an error, not a loss."""
    if src.exists() or src.is_symlink():
        if src.is_symlink() or not (src / MARKER).is_file():
            raise SystemExit(f"{src} exists and is not a staging folder of docs/build.py (no {MARKER} in it); "
                             "move it away or choose another --out")
        shutil.rmtree(src)


def stage(src: Path, executed: Path | None) -> None:
    """Copy docs/ into ``src`` and add the executed lessons, their index and MathJax."""
    import jupyter_server_mathjax
    import nbformat

    from cogviz.lessons import run

    fresh_staging(src)
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    (src / MARKER).write_text("made by docs/build.py; deleted and remade by each build\n")
    (src / "lessons").mkdir()
    paths = lessons()
    for path in paths:
        if executed is not None:
            nb = nbformat.read(executed / path.name, as_version=4)
        else:
            print(f"running {path.name}", flush=True)
            nb = run(path)
        nbformat.write(without_widgets(nb), src / "lessons" / path.name)
    (src / "lessons" / "index.md").write_text(lesson_index(paths))
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", src / "_static" / "mathjax")


def build(out: Path, executed: Path | None = None) -> Path:
    """Stage and render the site into ``out``/html; returns that folder."""
    src = out / STAGING
    stage(src, executed)
    html = out / "html"
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-E",
                    str(src), str(html)], check=True, cwd=ROOT)
    return html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "docs")
    parser.add_argument("--executed", type=Path, help="a folder of the lessons already executed (same file names)")
    args = parser.parse_args()
    html = build(args.out.resolve(), args.executed)
    print(f"the site: {html / 'index.html'}")


if __name__ == "__main__":
    main()
