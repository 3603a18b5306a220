"""`cogviz generate`: the toy model by default, files out, one clear line and exit 2 on bad input."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cogviz.sampler import Trace
from cogviz.samples import sample_path


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cogviz.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_generate_on_the_toy_model_writes_video_and_trace(tmp_path):
    out, trace = tmp_path / "strip.png", tmp_path / "t.safetensors"
    r = run_cli("generate", "--image", str(sample_path("shapes")), "--prompt", "a red circle moves left",
                "--steps", "8", "--seed", "2", "--out", str(out), "--trace", str(trace), "--record", "z_img",
                "--record", "step/*/input")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out} (17 frames, 64x96)" in r.stdout
    strip = np.asarray(Image.open(out))
    assert strip.shape == (64, 17 * 96, 3) and strip.std() > 5  # 17 frames side by side, not blank
    t = Trace.load(trace)
    assert sorted(t.names()) == sorted(["z_img"] + [f"step/{i}/input" for i in range(8)])
    assert t.meta["seed"] == 2 and t["step/0/input"].shape == (2, 5, 32, 8, 12)


def test_generate_defaults_to_video_mp4_in_the_working_folder(tmp_path):
    r = run_cli("generate", "--image", str(sample_path("shapes")), "--prompt", "a blue square moves up",
                "--steps", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = (tmp_path / "video.mp4").read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000


@pytest.mark.parametrize("args,message", [
    (["--prompt", "x"], "required: --image"),
    (["--image", "IMG", "--prompt", "x", "--steps", "0"], "--steps: expected a positive whole number"),
    (["--image", "IMG", "--prompt", "x", "--frames", "10"], r"8k+1 frames"),
    (["--image", "IMG", "--prompt", "x", "--out", "v.avi"], "use a .mp4, .gif or .png"),
    (["--image", "missing.png", "--prompt", "x"], "no such file"),
    (["--image", "IMG", "--prompt", "x", "--model", "no/such-model-here"], "could not load"),
    (["--image", "IMG", "--prompt", "x", "--image-noise", "-0.5"], "noise_image.sigma=-0.5: expected a number in"),
    (["--image", "IMG", "--prompt", "x", "--image-window", "0.6", "0.2"], "start < end"),
    (["--image", "IMG", "--prompt", "x", "--ablation", "{kind: zero}"], "not valid JSON"),
    (["--image", "IMG", "--prompt", "x", "--ablation", '{"kind": "blur"}'], "unknown ablation; expected one of"),
    (["--image", "IMG", "--prompt", "x", "--ablation", "missing.json"], "cannot read the file"),
    (["--image", "IMG", "--prompt", "x", "--metrics", "m.txt"], "use a .csv or .parquet"),
    (["--image", "IMG", "--prompt", "x", "--ablation", '{"kind": "mask_image", "box": [0, 0, 200, 8]}'],
     "outside the 96x64 fitted image"),
])
def test_generate_bad_arguments_give_one_line_and_exit_2(args, message, tmp_path):
    args = [str(sample_path("shapes")) if a == "IMG" else a for a in args]
    r = run_cli("generate", *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert not (tmp_path / "video.mp4").exists()  # nothing half-written


def test_help_explains_each_command():
    r = run_cli("--help")
    for command in ("generate", "fit", "train-toy"):
        assert command in r.stdout
    assert "--trace" in run_cli("generate", "--help").stdout
    toy = run_cli("train-toy", "--help")
    assert toy.returncode == 0 and toy.stdout.startswith("usage: cogviz train-toy")
    assert "--tune-steps" in toy.stdout and "--run-dir" in toy.stdout  # the training command's own options


def test_argument_errors_come_before_torch_is_imported():
    # building the parser and rejecting bad flags must not pay for importing torch and diffusers
    code = ("import sys\nfrom cogviz.cli import main\n"
            "for argv in (['generate', '--prompt', 'x'], ['generate', '--image', 'a.png', '--prompt', 'x', '--steps', '0'], "
            "['fit', 'a.png']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        print('exit', e.code)\n"
            "print('torch imported:', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split("\n")[:4] == ["exit 2", "exit 2", "exit 2", "torch imported: False"], r.stdout + r.stderr


def test_the_readme_first_command_works_as_written(tmp_path):
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    line = next(l for l in readme.read_text().splitlines() if l.startswith(".venv/bin/cogviz generate"))
    assert readme.read_text().index(line) > readme.read_text().index("make lab")
    args = shlex.split(line)[1:]
    args = [str(root / a) if re.fullmatch(r"cogviz/samples/\w+\.png", a) else a for a in args]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "video.mp4").stat().st_size > 1000 and "17 frames, 64x96" in r.stdout


def test_generate_with_ablation_flags_writes_metrics_and_records_the_ablations(tmp_path):
    import json

    import pandas as pd

    (tmp_path / "abl.json").write_text(json.dumps([{"kind": "flip_image"}, {"kind": "mask_image", "box": [0, 0, 16, 16]}]))
    trace, metrics = tmp_path / "t.safetensors", tmp_path / "m.csv"
    r = run_cli("generate", "--image", str(sample_path("shapes")), "--prompt", "a red circle moves left", "--steps", "4",
                "--ablation", str(tmp_path / "abl.json"), "--ablation", '{"kind": "scale_image", "alpha": 0.5}',
                "--image-noise", "0.05", "--image-window", "0", "0.5", "--image-guidance", "2",
                "--metrics", str(metrics), "--trace", str(trace), "--out", str(tmp_path / "v.gif"))
    assert r.returncode == 0, r.stderr
    kinds = [a["kind"] for a in Trace.load(trace).meta["ablations"]]
    assert kinds == ["flip_image", "mask_image", "scale_image", "noise_image", "step_window", "image_guidance"]
    assert "ablations: flip_image(axis=horizontal) + mask_image" in r.stdout and "anchor: frame 0" in r.stdout
    df = pd.read_csv(metrics)
    assert len(df) == 17 and {"psnr", "ssim", "palette", "layout", "flicker", "motion"} <= set(df.columns)


def test_help_lists_every_ablation_kind_and_whether_it_is_in_distribution():
    import cogviz.ablations as A

    for command in ("generate", "sweep"):
        out = run_cli(command, "--help").stdout
        for kind, cls in A.KINDS.items():
            assert f"  {kind}(" in out and cls.in_distribution in out, (command, kind)
