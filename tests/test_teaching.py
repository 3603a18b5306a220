"""What the lessons and the guide teach: no statement their sources contradict, no measured figure
typed into a lesson's prose, the math beside a checking cell, and lessons written against cogviz's
public names only.

The wrong statements below were found by reading the lessons against diffusers, THUDM/CogVideo's SAT
code, the papers and the maintainers' threads; each entry names what decides it.
"""
import ast
import re
from pathlib import Path

import jupytext
import pytest

import cogviz

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
TEXTS = LESSONS + sorted((ROOT / "docs" / "guide").glob("*.md")) + [ROOT / "README.md"] + \
    sorted((ROOT / "cogviz").rglob("*.py"))

#: (pattern, why it is wrong, what decides it)
WRONG = [
    (r"trained with the image latent \*?divided",
     "1.5's training did not divide: diffusers says the team 'forgot to multiply'; SAT feeds the unscaled latent",
     "diffusers pipeline_cogvideox_image2video.py prepare_latents; zai-org/CogVideo#605, #761"),
    (r"training quirk its maintainers", "the 1.5 scale is disputed, not confirmed", "zai-org/CogVideo#605, #761"),
    (r"roughly unit spread", "0.7 was chosen empirically", "zai-org/CogVideo#190"),
    (r"one way only", "the text tokens, updated in every block, are a second road", "diffusers CogVideoXBlock.forward"),
    (r"remedy the .?conditional image leakage",
     "the paper's TimeNoise is a training-time distribution; cogviz's schedule is an inference-time analogue",
     "arXiv 2406.15735"),
    (r"group norms read every latent frame", "the decoder's group norms mix only the latent frames decoded together",
     "diffusers AutoencoderKLCogVideoX._decode"),
    (r"away from \(scale < 1\)", "0 < s < 1 weakens the pull to the image; s < 0 reverses it", "the image-guidance formula"),
    (r"scheduler \| DDIM, v-prediction, zero-SNR, trailing \|",
     "DDIM is diffusers' default; the official recipe is DPM++ with dynamic CFG", "THUDM/CogVideo inference/cli_demo.py"),
    (r"\(LTX-Video, Wan 2\.2 TI2V, HunyuanVideo-I2V\): latent frame 0 of `z_t` replaced by the image latent noised",
     "those models write the clean latent with timestep 0 per token", "diffusers pipeline_ltx_image2video.py, Wan expand_timesteps"),
    (r"3 held-out scenes", "a figure no script in the repository produces", "grep"),
    (r"Stable Video Diffusion \| 8 channels = 4 noise \+ 4 image latent; guidance",
     "SVD's image latent is on every frame, with CLIP tokens and noise augmentation", "diffusers SVD pipeline"),
]


def _prose(path: Path) -> str:
    """A file's text with comment markers removed and whitespace collapsed (so a claim split over
    lines still matches)."""
    text = path.read_text()
    text = re.sub(r"^\s*# ?", "", text, flags=re.M)
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("pattern,why,source", WRONG, ids=[w[0][:30] for w in WRONG])
def test_no_lesson_or_guide_repeats_a_statement_its_sources_contradict(pattern, why, source):
    hits = [p.relative_to(ROOT).as_posix() for p in TEXTS if p.name != "test_teaching.py" and re.search(pattern, _prose(p))]
    assert not hits, f"{hits} still say {pattern!r}: {why} ({source})"


def test_the_corrections_name_their_sources():
    needed = {"03_latent_space_encoding": ["zai-org/CogVideo#605", "#761", "#190", "forgot to multiply"],
              "06_the_diffusion_math": ["zai-org/CogVideo#267", "VideoScaling", "PR #13125"],
              "10_where_the_anchor_is_read": ["second road"],
              "12_other_ways_to_condition": ["2406.15735", "flow-matching", "latent_concat", "every** frame"]}
    for stem, sources in needed.items():
        text = _prose(ROOT / "notebooks" / f"{stem}.py")
        missing = [s for s in sources if s not in text]
        assert not missing, f"{stem} does not name {missing}"


# -- numbers come from the code -------------------------------------------------------------------

#: a measured figure in prose: a level in dB, a share of clips or views, a timing, a ratio faster,
#: a decimal with two or more places, a colour that names a plotted line
MEASURED = re.compile(r"(?<![\w.#])(?:\d+(?:\.\d+)?\s?(?:dB|ms|s\b|x faster|times faster)|\d*\.\d{2,}"
                      r"|\d+ (?:clips|runs|views|scenes) of \d+|(?:a few|half a|some|within)\s+(?:a\s+)?dB"
                      r"|\((?:red|purple|orange|green|blue)\)|(?:red|purple|orange|green|blue) (?:curve|line))")
PERCENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%")
#: figures the prose may state because they are facts of a recipe or of arithmetic the lesson shows,
#: not measurements: each with where it comes from
FACTS = {
    "55.6 %": "lesson 1: the crop/pad arithmetic of 400x600 -> 720x480, computed by the cell that follows",
    "125 %": "lesson 1: the stretch arithmetic",
    "5%": "SAT config noised_image_dropout: 0.05",
    "4%": "ALG's configs/cogvideox_alg.yaml (interval 0-0.04)",
    "30%": "lesson 7's step windows, set in its parameters",
    "70%": "lesson 7's step windows, set in its parameters",
    "95 %": "the confidence level of cogviz.effects",
    "10%": "SAT config ucg_rate: 0.1",
    "15%": "SAT 1.5 config augmentation_dropout: 0.15",
    "1.15": "CogVideoX-2B's scaling factor (zai-org/CogVideo#190)",
    "0.05": "the median of SAT's pixel-noise sigma, exp(-3)",
    "0.25": "ALG's lp_resize_factor",
    "0.02": "SVD's noise_aug_strength default",
}


def measured_figures(markdown: str) -> list[str]:
    """The measured-looking figures of a lesson's markdown, maths, code spans and arXiv ids aside."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|arXiv \d{4}\.\d{4,5}|#\d+", "", markdown, flags=re.S)
    found = [m.group() for m in MEASURED.finditer(text)] + [m.group() for m in PERCENT.finditer(text)]
    facts = {k.replace(" ", "") for k in FACTS}
    return [f for f in found if f.replace(" ", "") not in facts]


def test_the_number_detector_finds_typed_measurements():
    assert measured_figures("frame 0 about 21.8 dB, 13 dB lost, right in 7 clips of 10") == ["21.8 dB", "13 dB",
                                                                                           "7 clips of 10"]
    assert measured_figures("SSIM from 0.776 to 0.440; the purple curve; in 92 % of views") == \
        ["0.776", "0.440", "purple curve", "92 %"]
    assert measured_figures("within half a dB, the lesson's $\\sigma = 0.13$ and `0.776`, 5% dropout") == ["half a dB"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_no_lesson_types_a_measured_number_into_its_prose(path):
    cells = [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]
    typed = [f for text in cells for f in measured_figures(text)]
    assert not typed, f"{path.name} types measured figures into its prose: {typed}; print them from the cell that measures"


# -- the math, each equation with a cell that checks it ----------------------------------------------

def test_the_math_lesson_writes_each_equation_and_checks_it_in_the_next_cell():
    nb = jupytext.read(ROOT / "notebooks" / "06_the_diffusion_math.py")
    equations = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "$$" in cell.source:
            equations += 1
            after = next(c for c in nb.cells[i + 1:] if c.cell_type == "code")
            assert "assert" in after.source or "check(" in after.source, f"no check after: {cell.source[:80]}"
    assert equations >= 6  # forward/v, x0, CFG/image guidance, DDIM, DPM++, dynamic CFG


# -- lessons use the public names ---------------------------------------------------------------------

DECLARED = "cogviz.toy"  #: the one module besides cogviz's top-level names a lesson may import from


def cogviz_uses(source: str) -> list[str]:
    """What a lesson's code takes from cogviz: ``from X import a`` as ``X.a``, ``import X``, and
    ``cogviz.a.b`` attribute chains as ``cogviz.a``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cogviz"):
            out += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("cogviz")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "cogviz":
            out.append(f"cogviz.{node.value.attr}.{node.attr}")
    return out


def public(use: str) -> bool:
    parts = use.split(".")
    if parts[0] != "cogviz":
        return True
    if use.startswith(DECLARED + ".") or use in ("cogviz", DECLARED):
        return True
    if len(parts) == 2:
        return parts[1] in cogviz.__all__
    # from cogviz.<public module> import name (e.g. cogviz.sweep.sweep, cogviz.lessons.check)
    return parts[1] in cogviz._MODULES and len(parts) == 3


def test_public_detects_a_private_import():
    assert public("cogviz.viz") and public("cogviz.lessons.check") and public("cogviz.toy.sample_scene")
    assert not public("cogviz.trainer.evaluate.global_motion") and not public("cogviz.encode.image_to_tensor")
    assert cogviz_uses("x = cogviz.encode.image_to_tensor(p)") == ["cogviz.encode.image_to_tensor"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_imports_only_public_names(path):
    code = "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    private = [u for u in cogviz_uses(code) if not public(u)]
    assert not private, f"{path.name} imports {private}; use cogviz's top-level names (cogviz.__all__) or {DECLARED}"
