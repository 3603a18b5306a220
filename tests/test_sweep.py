"""Sweeps: controlled, durable (SIGKILL, truncated files, changed settings), and readable without a model."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

import cogviz.ablations as A
import cogviz.models as M
from cogviz.errors import CogvizError
from cogviz.samples import sample_path
from cogviz.sweep import SweepResult, load_config, sweep

PROMPT = "a red circle moves left"
VARIANTS = [A.ZeroImage(), A.NoiseImage(0.3), [A.FlipImage(), A.ScaleImage(0.5)]]
STEPS = 4


@pytest.fixture(scope="module")
def toy():
    return M.load_pipeline("toy")


@pytest.fixture(scope="module")
def reference(toy, tmp_path_factory):
    """An uninterrupted sweep: 2 seeds x 4 variants (baseline included)."""
    out = tmp_path_factory.mktemp("reference")
    return sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1], out_dir=out, steps=STEPS,
                 progress=False)


def test_a_sweep_writes_every_run_with_its_tables(reference):
    r = reference
    assert len(r) == 8 and r.runs["run_id"].is_unique
    assert r.runs["label"].tolist()[:4] == ["baseline", "zero_image", "noise_image(sigma=0.3, space=pixel)",
                                            "flip_image(axis=horizontal) + scale_image(alpha=0.5)"]
    assert {"noise_image.sigma", "scale_image.alpha", "flip_image.axis", "frame0_psnr", "mean_ssim", "motion",
            "half_life", "video", "metrics"} <= set(r.runs.columns)
    assert len(r.frames) == 8 * 17 and set(r.frames["run_id"]) == set(r.runs["run_id"])
    for row in r.runs.itertuples():
        run_dir = Path(row.video).parent
        assert sorted(p.name for p in run_dir.iterdir()) == ["frames.parquet", "run.json", "video.mp4"]
    zero = r.runs[r.runs["label"] == "zero_image"]["frame0_psnr"]
    base = r.runs[r.runs["label"] == "baseline"]["frame0_psnr"]
    assert zero.max() < base.min()  # the measurements are the runs' own


#: Batched rows equal unbatched ones up to float rounding: kernels sum in another order for other
#: batch sizes. Measured on the toy: per-frame metrics within 8e-4 (PSNR within 3e-4 dB), latents 2e-5.
METRIC_ATOL = 5e-3
LATENT_ATOL = 1e-4
METRIC_COLS = ["run_id", "frame", "psnr", "ssim", "palette", "layout", "flicker", "motion"]


def assert_rows_close(a, b, atol=METRIC_ATOL):
    a = a[METRIC_COLS].sort_values(["run_id", "frame"]).reset_index(drop=True)
    b = b[METRIC_COLS].sort_values(["run_id", "frame"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=atol == 0, rtol=0, atol=atol)


def test_controlled_two_baselines_are_identical_and_a_no_op_equals_the_baseline(toy, tmp_path):
    from safetensors.torch import load_file

    image = str(sample_path("shapes"))
    no_ops = [A.ScaleImage(1.0), A.StepWindow(0.0, 1.0)]

    def latents(result):
        return {row.label: load_file(row.latents) for row in result.runs.itertuples()}

    # one variant per forward: bit for bit
    a = latents(sweep(toy, [image], [PROMPT], no_ops, [3], out_dir=tmp_path / "a", steps=STEPS, progress=False,
                      save_latents=True, batch=1))
    b = latents(sweep(toy, [image], [PROMPT], [], [3], out_dir=tmp_path / "b", steps=STEPS, progress=False,
                      save_latents=True, batch=1))
    assert (a["baseline"]["latents.final"] == b["baseline"]["latents.final"]).all()  # two sweeps, two baselines
    assert (a["scale_image(alpha=1)"]["latents.final"] == a["baseline"]["latents.final"]).all()
    assert (a["step_window(start=0, end=1)"]["latents.final"] == a["baseline"]["latents.final"]).all()
    # batched: the same noise and the same posterior draw of z_img, bit for bit; outputs within rounding
    c = latents(sweep(toy, [image], [PROMPT], no_ops + [A.ZeroImage()], [3], out_dir=tmp_path / "c", steps=STEPS,
                      progress=False, save_latents=True))
    for label in ("baseline", "scale_image(alpha=1)", "step_window(start=0, end=1)"):
        assert (c[label]["z_img"] == b["baseline"]["z_img"]).all()
        assert (c[label]["latents.final"] - b["baseline"]["latents.final"]).abs().max() <= LATENT_ATOL
    assert (c["zero_image"]["latents.final"] - b["baseline"]["latents.final"]).abs().max() > 100 * LATENT_ATOL


def test_batched_rows_equal_unbatched_rows_within_the_stated_tolerance(toy, reference, tmp_path):
    calls = []
    hook = toy.transformer.register_forward_hook(lambda m, args, kw, out: calls.append(kw["hidden_states"].shape[0]),
                                                 with_kwargs=True)
    try:
        one = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1], out_dir=tmp_path, steps=STEPS,
                    progress=False, batch=1)
    finally:
        hook.remove()
    assert set(calls) == {2} and len(calls) == 8 * STEPS  # one variant (two CFG rows) per forward
    assert sorted(one.runs["run_id"]) == sorted(reference.runs["run_id"])
    assert_rows_close(one.frames, reference.frames)
    with pytest.raises(AssertionError):  # the tolerance is tight enough to tell different runs apart
        swapped = reference.frames.copy()
        swapped["run_id"] = swapped["run_id"].map(dict(zip(one.runs["run_id"], one.runs["run_id"][::-1])))
        assert_rows_close(one.frames, swapped)


def test_a_sweep_batches_the_variants_and_encodes_each_prompt_and_image_once(toy, tmp_path):
    counts = {"transformer": [], "text": 0, "vae": 0}
    hooks = [toy.transformer.register_forward_hook(
                 lambda m, args, kw, out: counts["transformer"].append(kw["hidden_states"].shape[0]), with_kwargs=True),
             toy.text_encoder.register_forward_hook(lambda *a: counts.__setitem__("text", counts["text"] + 1)),
             toy.vae.encoder.register_forward_hook(lambda *a: counts.__setitem__("vae", counts["vae"] + 1))]
    try:
        sweep(toy, [str(sample_path("shapes"))], [PROMPT], [A.ZeroImage(), A.ScaleImage(0.5), A.NoiseImage(0.3)],
              [0, 1, 2], out_dir=tmp_path, steps=STEPS, progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert counts["transformer"] == [8] * (3 * STEPS)  # 4 variants x 2 CFG rows in one forward, per seed and step
    assert counts["text"] == 2  # the prompt and the negative prompt, once for three seeds
    assert counts["vae"] == 3 * 2  # per seed: the image, and the pixel-noised image (noise_image)


def test_rerun_skips_finished_runs_and_a_changed_setting_adds_rows(toy, reference):
    out = reference.out_dir
    t = time.perf_counter()
    again = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1], out_dir=out, steps=STEPS,
                  progress=False)
    assert time.perf_counter() - t < 5 and sorted(again.runs["run_id"]) == sorted(reference.runs["run_id"])
    more = sweep(toy, [str(sample_path("shapes"))], [PROMPT], [A.NoiseImage(0.6)], [0], out_dir=out, steps=STEPS,
                 progress=False)
    everything = SweepResult.load(out)
    assert len(more) == 2 and len(everything) == 9  # the baseline was there; one new run, old rows kept
    changed = sweep(toy, [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=out, steps=STEPS + 1,
                    progress=False)
    assert changed.runs["run_id"][0] not in set(reference.runs["run_id"])
    everything = SweepResult.load(out)
    assert len(everything) == 10 and set(everything.runs["steps"]) == {STEPS, STEPS + 1}


def test_truncated_files_are_detected_and_their_runs_redone(toy, tmp_path):
    image = str(sample_path("shapes"))
    first = sweep(toy, [image], [PROMPT], [A.ZeroImage()], [0], out_dir=tmp_path, steps=STEPS, progress=False)
    video, table = Path(first.runs["video"][0]), Path(first.runs["metrics"][1])
    video.write_bytes(video.read_bytes()[:100])
    table.write_bytes(table.read_bytes()[:-10])
    assert len(SweepResult.load(tmp_path)) == 0  # neither damaged run counts as finished
    again = sweep(toy, [image], [PROMPT], [A.ZeroImage()], [0], out_dir=tmp_path, steps=STEPS, progress=False)
    assert len(again) == 2
    pd.testing.assert_frame_equal(again.frames.reset_index(drop=True), first.frames.reset_index(drop=True))


def test_bad_config_or_missing_image_fails_before_compute_and_writes_nothing(toy, tmp_path):
    out = tmp_path / "never"
    calls = []
    original = toy.transformer.forward
    toy.transformer.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        cases = [
            (dict(images=[str(tmp_path / "missing.png")]), "no such file"),
            (dict(ablations=[{"kind": "blur"}]), "unknown ablation"),
            (dict(ablations=[A.MaskImage((0, 0, 500, 8))]), "outside the 96x64 fitted image"),
            (dict(seeds=[-1]), "not a whole number >= 0"),
            (dict(prompts=[]), "prompts is empty"),
        ]
        for change, message in cases:
            kw = dict(images=[str(sample_path("shapes"))], prompts=[PROMPT], ablations=[A.ZeroImage()], seeds=[0])
            kw.update(change)
            with pytest.raises(CogvizError, match=message):
                sweep(toy, kw["images"], kw["prompts"], kw["ablations"], kw["seeds"], out_dir=out, steps=STEPS,
                      progress=False)
    finally:
        del toy.transformer.forward
    assert calls == [] and not out.exists()


def test_results_open_without_a_model_and_draw(reference):
    r = SweepResult.load(reference.out_dir)
    assert len(r) >= 8
    assert r.plot_decay().shape[2] == 3 and r.plot_tradeoff().shape[2] == 3
    g = r.grid(seed=0)
    assert g.shape[0] == 17 and g.shape[2] > 4 * 96  # baseline and three variants side by side
    with pytest.raises(CogvizError, match="not a sweep results directory"):
        SweepResult.load(reference.out_dir / "runs")


SCRIPT = """
import sys
import tempfile
import cogviz.ablations as A, cogviz.models as M
from cogviz.sweep import sweep
pipe = M.load_pipeline("toy")
sweep(pipe, [sys.argv[2]], ["a red circle moves left"], [A.ZeroImage(), A.NoiseImage(0.3),
      [A.FlipImage(), A.ScaleImage(0.5)]], [0, 1], out_dir=sys.argv[1], steps=4, progress=False)
"""


@pytest.mark.slow
def test_sigkilled_sweeps_resume_to_exactly_the_uninterrupted_rows(reference, tmp_path):
    out = tmp_path / "killed"
    rng = random.Random(0)
    cmd = [sys.executable, "-c", SCRIPT, str(out), str(sample_path("shapes"))]
    kills = 0

    def finished():
        return len([d for d in (out / "runs").glob("*") if not d.name.startswith(".")]) if out.exists() else 0

    for _ in range(20):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target = finished() + rng.choice([0, 1, 2])  # 0: killed before or during its first run
        while p.poll() is None and finished() < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))  # land anywhere: mid-run, mid-write, between runs
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
            continue
        assert p.returncode == 0, p.stderr.read().decode()
        break
    assert kills >= 2
    done = SweepResult.load(out)
    assert sorted(done.runs["run_id"]) == sorted(reference.runs["run_id"])  # every run, exactly once
    assert not list((out / "runs").glob(".*"))  # no leftovers of the runs in flight
    assert_rows_close(done.frames, reference.frames)  # resumed runs batch other subsets: within rounding


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cogviz.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_sweep_runs_a_yaml_config_and_resumes(tmp_path):
    import shutil

    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "sweep.yaml").write_text(
        "images: [shapes.png]\nprompts: ['a red circle moves left']\nseeds: [0]\nsteps: 3\n"
        "ablations:\n  - {kind: zero_image}\n  - [{kind: flip_image}, {kind: scale_image, alpha: 0.5}]\n")
    r = run_cli("sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "3 runs in" in r.stdout and "zero_image" in r.stdout and "frame0_psnr" in r.stdout
    assert len(SweepResult.load(tmp_path / "out")) == 3
    again = run_cli("sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"))
    assert again.returncode == 0 and "3/3" in again.stderr and "0/3" not in again.stderr  # nothing re-ran


@pytest.mark.parametrize("text,message", [
    ("images: [shapes.png]\nprompts: [x]\nsteps: '4'\n", "config key 'steps': '4' is str; expected a whole number"),
    ("images: [shapes.png]\n", "config key 'prompts': missing"),
    ("images: [shapes.png]\nprompts: [x]\ncolour: red\n", "config key 'colour': unknown; accepted keys"),
    ("images: [nothere.png]\nprompts: [x]\n", "no such file"),
    ("images: [shapes.png]\nprompts: [x]\nablations: [{kind: noise_image, sigma: -1}]\n", "noise_image.sigma=-1"),
    ("images: [shapes.png\n", "not valid YAML"),
])
def test_cli_sweep_bad_config_exits_2_with_one_line_and_writes_nothing(text, message, tmp_path):
    import shutil

    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "c.yaml").write_text(text)
    r = run_cli("sweep", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def local_ray():
    import ray  # in the test extra: make install always installs it

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_with_two_actors_gives_the_local_rows(toy, reference, local_ray, tmp_path):
    r = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1], out_dir=tmp_path, steps=STEPS,
              progress=False, backend="ray", ray_options={"num_actors": 2})
    assert sorted(r.runs["run_id"]) == sorted(reference.runs["run_id"])
    # one thread per actor against two here: the batched GEMMs sum in another order, so within rounding
    assert_rows_close(r.frames, reference.frames)


def actor_pids() -> list[int]:
    """The processes of live sweep actors on this machine (Ray names the actor in its command line)."""
    import psutil  # a Ray dependency

    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and any("_SweepActor" in part for part in (p.info["cmdline"] or [])):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


def actor_killer(out_dir: Path, killed: list, timeout: float = 120):
    """A thread that SIGKILLs one sweep actor's process once the first run of ``out_dir`` lands."""
    import threading

    def killer():
        deadline = time.time() + timeout
        while time.time() < deadline and not killed:
            started = (out_dir / "runs").exists() and any((out_dir / "runs").iterdir())
            pids = actor_pids()
            if started and pids:  # the actors are working: kill one mid-sweep
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    return t


def test_a_killed_ray_actor_is_replaced_and_its_run_redone(toy, local_ray, tmp_path):
    killed = []
    t = actor_killer(tmp_path, killed, timeout=60)
    r = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1, 2], out_dir=tmp_path, steps=12,
              progress=False, backend="ray", ray_options={"num_actors": 2})
    t.join()
    assert killed and len(r) == 12 and r.runs["run_id"].is_unique
    assert len(SweepResult.load(tmp_path)) == 12  # every run once, whatever the killed actor left behind


def test_ray_backend_needs_a_named_pipeline(tmp_path):
    from cogviz.testing import tiny_random_pipeline

    with pytest.raises(CogvizError, match="actors load the model by name"):
        sweep(tiny_random_pipeline(), [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=tmp_path,
              backend="ray")
    with pytest.raises(CogvizError, match="backend='slurm'"):
        sweep(tiny_random_pipeline(), [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=tmp_path,
              backend="slurm")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list, env: dict, log: Path, timeout: float = 90) -> subprocess.Popen:
    """`ray start ... --block` in its own process group; returns once it says the runtime started."""
    out = open(log, "w")
    node = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--block", "--disable-usage-stats",
                             *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    deadline = time.time() + timeout
    while "Ray runtime started" not in log.read_text():
        assert node.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.5)
    return node


def _stop_nodes(nodes: list) -> None:
    """Signal each node's process group (its raylet, GCS, dashboard, workers) together; SIGKILL what
    outlives 45 s."""
    for node in nodes:
        os.killpg(node.pid, signal.SIGTERM)
    deadline = time.time() + 45
    for node in nodes:
        try:
            node.wait(max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(10)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real two-node Ray 2.60 cluster as the README starts one, on loopback: `ray get-auth-token
    --generate` (a token turns token authentication on), `ray start --head --block` with its dashboard
    (the Jobs API), then a worker node `ray start --address` given the token. One CPU a node, so two
    sweep actors need both nodes. Each node in its own process group, stopped by signalling it.
    Yields (GCS address, dashboard URL, the token, env of a client on another machine: a home of
    its own, no token)."""
    tmp = tmp_path_factory.mktemp("ray-cluster")
    port, dashboard, agents = _free_port(), _free_port(), (_free_port(), _free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    head_env = {**env, "HOME": str(tmp / "head-home"), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    (tmp / "head-home").mkdir()
    token = subprocess.run([str(Path(sys.executable).parent / "ray"), "get-auth-token", "--generate"], env=head_env,
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    head_token = tmp / "head-home" / ".ray" / "auth_token"
    head_token.chmod(0o600)  # the guide's step: Ray writes it readable by every user
    head_env = {**head_env, "RAY_AUTH_MODE": "token"}  # token mode stated on the head too
    # its session files in a folder of its own (short: Ray's socket paths must fit 107 bytes), so the
    # head never becomes the "current cluster" that a later ray.init() on this machine would join
    session = Path(tempfile.mkdtemp(prefix="cogviz-ray-", dir="/tmp"))
    nodes = []
    try:
        nodes.append(_start_node([
            "--head", f"--temp-dir={session}", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agents[0]}"], head_env, tmp / "head.log"))
        # token mode set explicitly: Ray says nothing (it warns only when it starts without a token);
        # the tests below show a client without the token refused
        assert "Token authentication is disabled" not in (tmp / "head.log").read_text()
        # The worker as on a second machine (`ray start --address HEAD:PORT`, the token in its env).
        # Here both share one host: Ray turns 127.0.0.1 into the interface address and refuses a second
        # node when told to keep loopback, so this node is 127.0.0.2 and reaches the head's GCS by
        # 127.0.0.1's IPv6-mapped form, which Ray leaves as written. Both stay on loopback.
        # the worker reads the token from its own ~/.ray/auth_token (mode 600), as the guide says: no
        # token in its environment
        worker_env = {**env, "HOME": str(tmp / "worker-home"), "RAY_AUTH_MODE": "token"}
        (tmp / "worker-home" / ".ray").mkdir(parents=True)
        (tmp / "worker-home" / ".ray" / "auth_token").write_text(token)
        (tmp / "worker-home" / ".ray" / "auth_token").chmod(0o600)
        nodes.append(_start_node([f"--address=[::ffff:127.0.0.1]:{port}", "--node-ip-address=127.0.0.2",
                                  "--num-cpus=1", f"--dashboard-agent-listen-port={agents[1]}"], worker_env,
                                 tmp / "worker.log"))
        (tmp / "client-home").mkdir()
        client_env = {k: v for k, v in head_env.items() if k != "RAY_AUTH_MODE"}
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}", token, {**client_env, "HOME": str(tmp / "client-home")}
    finally:
        _stop_nodes(nodes)
        shutil.rmtree(session, ignore_errors=True)


@pytest.mark.slow
def test_cli_sweep_on_a_real_ray_cluster_writes_the_same_runs_as_local(tmp_path, ray_cluster):
    # the README's recipe: a head started with `ray start --head`, token authentication (Ray 2.60's
    # default), RAY_AUTH_MODE=token and the head's token in the client's shell
    import shutil
    import time

    address, _, token, env = ray_cluster
    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "sweep.json").write_text(json.dumps({
        "images": ["shapes.png"], "prompts": [PROMPT], "seeds": [0, 1], "steps": 3,
        "ablations": [{"kind": "zero_image"}]}))
    cli = [sys.executable, "-m", "cogviz.cli", "sweep", str(tmp_path / "sweep.json"), "--quiet"]
    t = time.perf_counter()
    refused = subprocess.run([*cli, "--out", str(tmp_path / "refused"), "--backend", "ray", "--ray-address",
                              address], env=env, capture_output=True, text=True, timeout=120)
    refused_s = time.perf_counter() - t
    assert refused.returncode == 2 and refused_s < 20, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"cogviz: error: ray address '{address}': the cluster refused this client")
    assert "RAY_AUTH_MODE=token" in last and "ray get-auth-token" in last
    assert not (tmp_path / "refused").exists()
    local = subprocess.run([*cli, "--out", str(tmp_path / "local")], env=env, capture_output=True, text=True)
    token_file = tmp_path / "token"  # the driver's token as a file of its own (RAY_AUTH_TOKEN_PATH)
    token_file.write_text(token)
    token_file.chmod(0o600)
    ray = subprocess.run([*cli, "--out", str(tmp_path / "ray"), "--backend", "ray", "--ray-address", address,
                          "--actors", "2", "--gpus-per-actor", "0"],
                         env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)},
                         capture_output=True, text=True, timeout=600)
    assert local.returncode == 0 and ray.returncode == 0, ray.stderr[-3000:]
    assert "4 runs in" in ray.stdout and "zero_image" in ray.stdout
    a, b = SweepResult.load(tmp_path / "local"), SweepResult.load(tmp_path / "ray")
    assert sorted(a.runs["run_id"]) == sorted(b.runs["run_id"]) and len(set(b.runs["run_id"])) == 4
    assert_rows_close(a.frames, b.frames)
    # the same cluster, one of its workers SIGKILLed mid-sweep: replaced, its runs redone, each run once
    (tmp_path / "more.json").write_text(json.dumps({
        "images": ["shapes.png"], "prompts": [PROMPT], "seeds": [0, 1, 2], "steps": 12,
        "ablations": [{"kind": "zero_image"}]}))
    killed = []
    t = actor_killer(tmp_path / "killed", killed)
    more = subprocess.run([sys.executable, "-m", "cogviz.cli", "sweep", str(tmp_path / "more.json"), "--quiet",
                           "--out", str(tmp_path / "killed"), "--backend", "ray", "--ray-address", address,
                           "--actors", "2", "--gpus-per-actor", "0"],
                          env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, capture_output=True,
                          text=True, timeout=600)
    t.join()
    assert killed and more.returncode == 0, more.stderr[-3000:]
    runs = SweepResult.load(tmp_path / "killed").runs
    assert len(runs) == 6 and runs["run_id"].is_unique


@pytest.mark.slow
def test_a_sweep_submitted_as_a_ray_job_runs_on_the_cluster(tmp_path, ray_cluster):
    # the README's job recipe: `ray job submit --address <dashboard> -- cogviz sweep ...` with the
    # token in the submitting shell; the driver runs on the head and joins through RAY_ADDRESS
    address, dashboard, token, env = ray_cluster
    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "sweep.json").write_text(json.dumps({
        "images": [str(tmp_path / "shapes.png")], "prompts": [PROMPT], "seeds": [0, 1], "steps": 3,
        "ablations": [{"kind": "zero_image"}]}))
    submit = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", dashboard, "--",
              sys.executable, "-m", "cogviz.cli", "sweep", str(tmp_path / "sweep.json"), "--out", str(tmp_path / "job"),
              "--backend", "ray", "--actors", "2", "--gpus-per-actor", "0", "--quiet"]
    refused = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "authentication token" in refused.stderr + refused.stdout
    job = subprocess.run(submit, env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
                         capture_output=True, text=True, timeout=600)
    assert job.returncode == 0 and "succeeded" in job.stdout + job.stderr, (job.stdout + job.stderr)[-3000:]
    assert "4 runs in" in job.stdout
    local = subprocess.run([sys.executable, "-m", "cogviz.cli", "sweep", str(tmp_path / "sweep.json"), "--quiet",
                            "--out", str(tmp_path / "local")], env=env, capture_output=True, text=True)
    a, b = SweepResult.load(tmp_path / "local"), SweepResult.load(tmp_path / "job")
    assert local.returncode == 0 and sorted(a.runs["run_id"]) == sorted(b.runs["run_id"])
    assert_rows_close(a.frames, b.frames)


@pytest.mark.slow
def test_a_ray_version_mismatch_fails_in_seconds_with_one_line(tmp_path, ray_cluster):
    # the head records its Ray and Python versions in its GCS; a cluster that says it runs another
    # Ray is one that Ray itself refuses to join (checked below), and cogviz says so before any work
    address, _, token, env = ray_cluster
    env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "sweep.json").write_text(json.dumps({"images": ["shapes.png"], "prompts": [PROMPT], "steps": 2}))
    code = (f"from ray._raylet import InnerGcsClient\nimport json, sys\nc = InnerGcsClient.standalone({address!r}, "
            "None, 3000)\nold = c.internal_kv_get(b'CLUSTER_METADATA', b'cluster', 3)\nnew = sys.argv[1].encode() or "
            "json.dumps({**json.loads(old), 'ray_version': '2.59.0'}).encode()\n"
            "c.internal_kv_put(b'CLUSTER_METADATA', new, True, b'cluster', 3)\nprint(old.decode())")
    old = subprocess.run([sys.executable, "-c", code, ""], env=env, capture_output=True, text=True, check=True,
                         timeout=60).stdout.strip()
    try:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "cogviz.cli", "sweep", str(tmp_path / "sweep.json"), "--out",
                            str(tmp_path / "out"), "--backend", "ray", "--ray-address", address], env=env,
                           capture_output=True, text=True, timeout=120)
        seconds = time.perf_counter() - t
        assert r.returncode == 2 and seconds < 20 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith(f"cogviz: error: ray address '{address}': Ray versions differ (the cluster runs "
                                   "Ray 2.59.0") and "pip install 'ray==2.59.0'" in r.stderr
        assert not (tmp_path / "out").exists()
        ray_itself = subprocess.run([sys.executable, "-c", f"import ray; ray.init({address!r})"], env=env,
                                    capture_output=True, text=True, timeout=120)
        assert ray_itself.returncode != 0 and "Version mismatch" in ray_itself.stderr
    finally:
        subprocess.run([sys.executable, "-c", code, old], env=env, check=True, timeout=60, capture_output=True)


@pytest.mark.parametrize("flags,message", [
    (["--actors", "2"], "need --backend ray"),
    (["--backend", "ray", "--gpus-per-actor", "-1"], "'-1' is not a number of GPUs >= 0"),
    (["--batch", "0"], "'0': use a whole number of variants >= 1, or auto"),
    (["--backend", "slurm"], "invalid choice: 'slurm'"),
])
def test_cli_sweep_bad_flags_exit_2_with_one_line(flags, message, tmp_path):
    import shutil

    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "c.yaml").write_text("images: [shapes.png]\nprompts: [x]\nsteps: 2\n")
    r = run_cli("sweep", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), *flags)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_a_format_1_results_directory_still_opens_and_a_new_sweep_adds_beside_it(tmp_path):
    # tests/data/sweep-format-1 was written by cogviz at commit 29a5ea6, before the core rebuild.
    # Format 2 ids no longer hash the weights' absolute path, so its runs are kept and told apart.
    import shutil

    from cogviz.models import load_pipeline
    from cogviz.samples import sample_path
    from cogviz.sweep import SweepResult, sweep

    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "data" / "sweep-format-1", old)
    before = SweepResult.load(old)
    assert sorted(before.runs["label"]) == ["baseline", "zero_image"] and len(before.frames) == 2 * 17
    pipe = load_pipeline("toy")
    args = ([str(sample_path("shapes"))], ["a red circle moves left"], [{"kind": "zero_image"}], [0])
    new = sweep(pipe, *args, out_dir=old, steps=2, progress=False)
    both = SweepResult.load(old)
    assert len(both) == 4 and set(before.runs["run_id"]) < set(both.runs["run_id"])  # old rows kept
    assert not set(new.runs["run_id"]) & set(before.runs["run_id"])
    manifest = json.loads((old / "manifest.json").read_text())
    assert manifest["format"] == 2 and len(manifest["sweeps"]) == 2


def test_run_ids_do_not_depend_on_where_the_weights_live(tmp_path):
    import shutil

    from cogviz.models import TOY_DIR, load_pipeline
    from cogviz.samples import sample_path
    from cogviz.sweep import plan

    args = ([str(sample_path("shapes"))], ["a red circle moves left"], [{"kind": "zero_image"}], [0])
    ids = []
    for where in ("checkout-a", "node-b/deeper"):  # the same weights folder, two absolute paths
        copy = tmp_path / where / "cogviz-toy"
        shutil.copytree(TOY_DIR, copy)
        ids.append([r.run_id for r in plan(load_pipeline(str(copy)), *args, steps=2)[0]])
    assert ids[0] == ids[1]


def test_a_wrong_ray_address_fails_in_seconds_before_anything_is_written(tmp_path):
    import time

    from cogviz.models import load_pipeline
    from cogviz.samples import sample_path
    from cogviz.sweep import SweepError, sweep

    pipe = load_pipeline("toy")
    args = ([str(sample_path("shapes"))], ["a red circle moves left"], [{"kind": "zero_image"}], [0])
    for address, why in (("127.0.0.1:1", "connection refused"), ("head-without-port", "expected HOST:PORT")):
        t = time.perf_counter()
        with pytest.raises(SweepError, match=rf"ray address '{address}': .*{why}"):
            sweep(pipe, *args, out_dir=tmp_path / "out", steps=2, progress=False, backend="ray",
                  ray_options={"address": address})
        assert time.perf_counter() - t < 10 and not (tmp_path / "out").exists()
    import shutil

    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    (tmp_path / "sweep.json").write_text(json.dumps({"images": ["shapes.png"], "prompts": [PROMPT], "seeds": [0],
                                                     "steps": 2}))
    r = run_cli("sweep", str(tmp_path / "sweep.json"), "--out", str(tmp_path / "cli"), "--backend", "ray",
                "--ray-address", "127.0.0.1:1")
    assert r.returncode == 2 and "nothing answers at 127.0.0.1:1 (connection refused)" in r.stderr
    # no address given: RAY_ADDRESS (what a Ray job sets) is the cluster to join, checked the same way

    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}
    code = "from cogviz.sweep.on_ray import connect\nconnect(None)"
    job = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "SweepError: ray address '127.0.0.1:1': nothing answers" in job.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "cli").exists()


# ---------------------------------------------------------------- issue 43: failures lose nothing
def _no_actor_left(timeout: float = 30) -> bool:
    deadline = time.time() + timeout
    while actor_pids() and time.time() < deadline:
        time.sleep(0.2)
    return not actor_pids()


def test_an_interrupted_ray_sweep_reraises_kills_its_actors_and_leaves_whole_runs(toy, local_ray, tmp_path):
    """Ctrl-C in the driver (here: raised from the progress callback once the first runs land): the
    KeyboardInterrupt itself comes back (not Ray's ValueError about cancelling actor tasks), no actor
    lives on to write into the folder, and every run there is whole; a second sweep completes it."""
    seen = []

    def interrupt(done, total):
        seen.append(done)
        if len(seen) > 1:  # the first call reports the runs already there
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1, 2], out_dir=tmp_path, steps=8,
              progress=False, backend="ray", ray_options={"num_actors": 2}, callback=interrupt)
    assert _no_actor_left(), actor_pids()
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    time.sleep(2)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before  # nobody writes on
    from cogviz.sweep.store import _valid

    whole = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert whole and all(_valid(p) is not None for p in whole)
    r = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0, 1, 2], out_dir=tmp_path, steps=8,
              progress=False)
    assert len(r) == 12 and not list((tmp_path / "runs").glob(".*"))


def test_an_actor_that_cannot_see_the_results_folder_fails_the_sweep_naming_its_runs(toy, local_ray, tmp_path):
    """Storage that is not shared: the actor's node has no manifest at the driver's path. Its error
    comes back as itself (a SweepError naming the runs), and no actor is left running."""
    from cogviz.sweep.identity import plan
    from cogviz.sweep.local import _groups
    from cogviz.sweep.on_ray import _run_on_ray

    runs, fitted, settings = plan(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS[:1], [0], steps=2)
    job = dict(settings=settings, metrics=True, save_latents=False, fps=8.0, out_dir=str(tmp_path / "elsewhere"),
               batch=1)
    with pytest.raises(CogvizError, match=f"runs {runs[0].run_id}.*does not hold this sweep's manifest"):
        _run_on_ray(toy, _groups(runs), fitted, job, lambda n: None, num_actors=1)
    assert _no_actor_left(), actor_pids()
    assert not (tmp_path / "elsewhere").exists()


def test_a_ray_sweep_with_a_relative_out_writes_every_run_there(toy, local_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS[:1], [0], out_dir="rel/out", steps=2,
              progress=False, backend="ray", ray_options={"num_actors": 1})
    assert len(r) == 2 and len(SweepResult.load(tmp_path / "rel" / "out")) == 2
    assert r.out_dir == tmp_path / "rel" / "out"


def test_a_sweep_that_comes_back_short_names_the_missing_runs(toy, tmp_path, monkeypatch):
    """Runs written where this machine does not see them (simulated: the writes vanish) are an
    error naming them, not a short result with exit 0."""
    import cogviz.sweep.local as L

    monkeypatch.setattr(L, "_write_run", lambda *a, **k: {})
    with pytest.raises(CogvizError, match="2 of 2 runs are not in"):
        sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS[:1], [0], out_dir=tmp_path, steps=2,
              progress=False)


TWO_WRITERS = """
import sys
import cogviz.ablations as A, cogviz.models as M
from cogviz.sweep import sweep
pipe = M.load_pipeline("toy")
sweep(pipe, [sys.argv[2]], ["a red circle moves left"], [A.ZeroImage(), A.NoiseImage(0.3)], [0, 1, 2],
      out_dir=sys.argv[1], steps=3, progress=False, batch=1)
print("done")
"""


@pytest.mark.slow
def test_two_processes_sweeping_into_one_folder_write_every_run_exactly_once(tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-c", TWO_WRITERS, str(out), str(sample_path("shapes"))]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0 and "done" in stdout, stderr[-3000:]
        assert "Traceback" not in stderr
    r = SweepResult.load(out)
    assert len(r) == 9 and r.runs["run_id"].is_unique
    assert not list((out / "runs").glob(".*"))  # no temporary folder left behind
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["sweeps"]) == 1  # both wrote the same sweep's entry: one, not lost, not doubled


def test_cleaning_keeps_a_live_writers_temporary_run_and_removes_a_dead_ones(tmp_path):
    import socket

    from cogviz.sweep.store import clean_stale

    host = socket.gethostname().replace(".", "-")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "runs").mkdir()
    live = tmp_path / "runs" / f".{'a' * 20}.{host}-{os.getpid()}.1234abcd.tmp"
    gone = tmp_path / "runs" / f".{'b' * 20}.{host}-{dead.pid}.1234abcd.tmp"
    other = tmp_path / "runs" / f".{'c' * 20}.another-host-1.1234abcd.tmp"
    for d in (live, gone, other):
        d.mkdir()
        (d / "video.mp4").write_bytes(b"partial")
    assert clean_stale(tmp_path) == [gone.name]
    assert live.exists() and other.exists() and not gone.exists()


def test_a_corrupt_manifest_is_reported_not_reset(toy, tmp_path):
    from cogviz.sweep.store import read_manifest

    for text, match in (("{not json", "is corrupt"), ("[1, 2]", "not a cogviz manifest")):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(CogvizError, match=match):
            sweep(toy, [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=tmp_path, steps=2, progress=False)
        assert (tmp_path / "manifest.json").read_text() == text  # nothing overwritten
        with pytest.raises(CogvizError, match=match):
            SweepResult.load(tmp_path)
        with pytest.raises(CogvizError, match=match):
            read_manifest(tmp_path)


@pytest.mark.parametrize("edit,match", [
    (lambda rec: rec["files"].append({"name": "../../outside.txt", "bytes": 6, "sha256": "0" * 64}),
     "it lists '../../outside.txt'"),
    (lambda rec: rec["files"].__setitem__(0, {**rec["files"][0], "name": "/dev/zero", "bytes": 0}),
     "it lists '/dev/zero'"),
    (lambda rec: rec.pop("summary"), "missing or mistyped: summary"),
    (lambda rec: rec["config"]["settings"].pop("steps"), "config.settings.steps"),
    (lambda rec: rec.__setitem__("run_id", "0" * 20), "is not its folder's name"),
])
def test_a_crafted_run_record_is_refused_by_load_and_shown_by_ablation_lab(reference, tmp_path, edit, match):
    out = tmp_path / "foreign"
    shutil.copytree(reference.out_dir, out)
    victim = next(p for p in (out / "runs").iterdir() if not p.name.startswith("."))
    rec = json.loads((victim / "run.json").read_text())
    edit(rec)
    (victim / "run.json").write_text(json.dumps(rec))
    (tmp_path / "outside.txt").write_text("secret")
    with pytest.raises(CogvizError, match=f"not a cogviz run record .*{match}"):
        SweepResult.load(out)
    from cogviz.widgets import AblationLab

    lab = AblationLab(pipe=None)
    assert lab.open_results(out) is None
    assert "not a cogviz run record" in lab.error and "not a cogviz run record" in lab.message.value


def test_run_ids_that_are_not_run_names_are_refused(reference):
    with pytest.raises(CogvizError, match="is not a run id"):
        SweepResult.load(reference.out_dir, run_ids=["../../etc"])


def test_a_url_image_is_recorded_without_credentials_or_query():
    from cogviz.sweep.identity import _image_name

    assert _image_name("https://alice:pw@host.example/a/b.png?X-Amz-Signature=S", 0) == "https://host.example/a/b.png"


def test_the_probe_skips_a_ray_api_it_does_not_know_and_names_a_non_ray_server(http_server, monkeypatch):
    """Issue 43: a changed private Ray API (TypeError, AttributeError) skips the probe instead of
    calling a live head 'not a Ray head'; a server that is not a GCS is still named as such; the
    loopback flag is set for Ray's import alone (no child process inherits it)."""
    import ray._raylet

    from cogviz.sweep.on_ray import check_address

    address = http_server.replace("http://", "")

    class Moved:
        @staticmethod
        def standalone(*args):
            raise TypeError("standalone() takes 2 positional arguments but 3 were given")

    class Answers:
        @staticmethod
        def standalone(*args):
            raise ConnectionError("RPC failed: not a GCS")

    import cogviz.sweep.on_ray as R

    monkeypatch.setattr(R, "_ANSWERED", {})
    monkeypatch.setattr(ray._raylet, "InnerGcsClient", Moved)
    check_address(address)  # skipped: ray.init's own checks remain
    monkeypatch.setattr(ray._raylet, "InnerGcsClient", Answers)
    check_address(address)  # an address that answered in this process is probed once (issue 45), not again
    R._ANSWERED.clear()
    with pytest.raises(CogvizError, match="answers but is not a Ray head's GCS"):
        check_address(address)
    probe = ("import os, sys; from cogviz.sweep.on_ray import _loopback_stays_loopback; "
             "_loopback_stays_loopback('127.0.0.1'); "
             "print('ray' in sys.modules, os.environ.get('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'))")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "None"]


def test_an_actor_that_cannot_start_fails_the_sweep_at_once_with_its_reason(toy, local_ray, tmp_path, monkeypatch):
    """Issue 43: the model missing on an actor's node fails the sweep with that reason, not after
    max_retries respawns behind 'lost their actor'."""
    monkeypatch.setattr(toy, "cogviz_source", str(tmp_path / "not-on-this-node"), raising=False)
    t = time.monotonic()
    with pytest.raises(CogvizError, match="a Ray actor could not start: .*no pipeline folder at"):
        sweep(toy, [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=tmp_path / "out", steps=2,
              progress=False, backend="ray", ray_options={"num_actors": 1, "max_retries": 3})
    assert time.monotonic() - t < 60 and _no_actor_left()


@pytest.mark.parametrize("family,fps", [("1.0", 8), ("1.5", 16)])
def test_a_sweep_measures_and_saves_at_the_familys_frame_rate(family, fps, tmp_path):
    """Issue 42: Preset.fps was never read; CogVideoX 1.5 (16 fps) was saved and measured at 8."""
    import imageio_ffmpeg

    from cogviz.models import fps_of
    from cogviz.testing import tiny_random_pipeline

    pipe = tiny_random_pipeline(family=family)
    assert fps_of(pipe) == fps
    r = sweep(pipe, [str(sample_path("shapes"))], [PROMPT], [], [0], out_dir=tmp_path, steps=2, progress=False,
              num_frames=17 if family == "1.5" else 9)
    reader = imageio_ffmpeg.read_frames(r.runs["video"].iloc[0])
    assert next(reader)["fps"] == fps
    reader.close()


def test_run_ids_are_what_they_were_before_the_sweep_ran_on_objects(toy):
    """Issue 45 reworked the sweep (objects end to end, a background writer, records hashed once); the
    ids of a sweep without the new settings are the ones results folders already hold. (Pinned for the
    committed toy weights: retraining the toy changes its fingerprint and so these ids.)"""
    from cogviz.sweep import plan

    runs, _, _ = plan(toy, [str(sample_path("shapes"))], [PROMPT], [A.ZeroImage()], [0, 1], steps=3)
    assert [r.run_id for r in runs] == ["3daa5c99087f17dabd61", "e8eb9981361a33420a66", "6eca193bc7ae185049ed",
                                        "43fff98a9b6b4667d159"]


def test_a_config_sets_any_settings_field_and_the_cli_loads_plans_and_probes_once(tmp_path, monkeypatch):
    import cogviz.experiment as E
    import cogviz.image as I
    import cogviz.sweep.driver as D
    from cogviz.cli import main

    shutil.copy(sample_path("shapes"), tmp_path / "shapes.png")
    reads, plans, seen = [], [], []
    real_read, real_plan, real_variants = I._read_path_or_url, D.plan, E.generate_variants
    monkeypatch.setattr(I, "_read_path_or_url", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    monkeypatch.setattr(D, "plan", lambda *a, **k: plans.append(1) or real_plan(*a, **k))
    monkeypatch.setattr(E, "generate_variants", lambda *a, settings, **k: seen.append(settings) or
                        real_variants(*a, settings=settings, **k))
    (tmp_path / "sweep.yaml").write_text(f"images: [shapes.png]\nprompts: ['{PROMPT}']\nseeds: [0]\nsteps: 2\n"
                                         "num_frames: 9\ndynamic_cfg: true\nsize: [64, 96]\n"
                                         "max_record_bytes: 100000000\nablations: [{kind: zero_image}]\n")
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert len(reads) == 1 and len(plans) == 1  # the image read once, the sweep planned once
    assert len(seen) == 1 and seen[0].dynamic_cfg and seen[0].size == (64, 96) and seen[0].num_frames == 9
    assert seen[0].max_record_bytes == 100_000_000 and seen[0].steps == 2
    r = SweepResult.load(tmp_path / "out")
    assert len(r) == 2 and set(r.runs["image"]) == {"shapes.png"}  # named by its file, though loaded early
    plain = D.plan(M.load_pipeline("toy"), [str(tmp_path / "shapes.png")], [PROMPT], [A.ZeroImage()], [0],
                   steps=2, num_frames=9)[0]
    assert not set(r.runs["run_id"]) & {p.run_id for p in plain}  # dynamic CFG is hashed into the ids
    for text, message in (("seed: 3\n", "'seed': not a sweep setting \\(use 'seeds'"),
                          ("size: [64]\n", "'size': \\[64\\]; expected \\[height, width\\]"),
                          ("dynamc_cfg: true\n", "did you mean 'dynamic_cfg'")):
        (tmp_path / "bad.yaml").write_text(f"images: [shapes.png]\nprompts: [x]\n{text}")
        with pytest.raises(CogvizError, match=message):
            load_config(tmp_path / "bad.yaml")


def _decode_spy(monkeypatch, before_decode):
    """Replace the sampler's VAE decode by one that first calls ``before_decode(videos_so_far, n)``."""
    import cogviz.sampler as S

    decode, seen = S.decode_latents, [0]

    def spy(pipe, z, **kw):
        before_decode(seen[0], len(z))
        seen[0] += len(z)
        return decode(pipe, z, **kw)

    monkeypatch.setattr(S, "decode_latents", spy)


def test_each_run_is_written_while_the_groups_later_videos_decode(toy, tmp_path, monkeypatch):
    """The background writer takes each run as its video is decoded: the group's last decode waits
    for a run to be placed, which happens only if the runs decoded before it were handed over then
    (a writer that waits for the whole group never places one in time)."""
    import threading

    import cogviz.sweep.local as L

    placed, waited, write_one = threading.Event(), [], L._write_one

    def write(run, g, job):
        record = write_one(run, g, job)
        placed.set()
        return record

    monkeypatch.setattr(L, "_write_one", write)
    variants = len(VARIANTS) + 1
    _decode_spy(monkeypatch, lambda before, n: waited.append(placed.wait(timeout=30)) if before + n == variants else None)
    result = sweep(toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0], out_dir=tmp_path, steps=2,
                   progress=False)
    assert waited == [True] and len(result.runs) == variants


def test_a_group_that_fails_midway_keeps_its_written_runs_and_a_rerun_does_the_rest(toy, reference, tmp_path,
                                                                                    monkeypatch):
    """A decode that fails after the first videos of a group: the error reaches the caller, the runs
    handed over before it are placed whole, and the same sweep again computes only the others."""
    import cogviz.sweep.local as L

    def fail_second(before, n):
        if before:
            raise RuntimeError("the VAE failed")

    args = (toy, [str(sample_path("shapes"))], [PROMPT], VARIANTS, [0])
    with monkeypatch.context() as m:
        _decode_spy(m, fail_second)
        with pytest.raises(RuntimeError, match="the VAE failed"):
            sweep(*args, out_dir=tmp_path, steps=STEPS, progress=False, batch=1)
    first = SweepResult.load(tmp_path).runs
    assert len(first) == 1 and not list((tmp_path / "runs").glob(".*"))  # one video decoded: one run, whole
    writes, write_one = [], L._write_one
    monkeypatch.setattr(L, "_write_one", lambda run, g, job: writes.append(run.run_id) or write_one(run, g, job))
    again = sweep(*args, out_dir=tmp_path, steps=STEPS, progress=False, batch=1)
    assert len(writes) == len(VARIANTS) and first["run_id"][0] not in writes
    seed0 = reference.runs[reference.runs["seed"] == 0]
    assert sorted(again.runs["run_id"]) == sorted(seed0["run_id"])


def test_the_frames_of_runs_measured_with_different_metrics_join_with_nans():
    """A folder may hold runs written before a metric was registered: the per-frame tables join on
    their common columns, the older runs' missing column NaN, each row keeping its run's label."""
    import numpy as np
    import pyarrow as pa

    from cogviz.sweep.results import _frames

    old = pa.table({"run_id": ["a"] * 2, "frame": [0, 1], "ssim": [1.0, 0.5]})
    new = pa.table({"run_id": ["b"] * 3, "frame": [0, 1, 2], "ssim": [1.0, 0.9, 0.8], "brightness": [3.0, 2.0, 1.0]})
    df = _frames([old, new], ["baseline"] * 2 + ["zero"] * 3)
    assert list(df.columns) == ["run_id", "frame", "ssim", "brightness", "label"]
    assert df["label"].tolist() == ["baseline"] * 2 + ["zero"] * 3
    assert np.isnan(df["brightness"][:2]).all() and df["brightness"][2:].tolist() == [3.0, 2.0, 1.0]
    assert df["ssim"].tolist() == [1.0, 0.5, 1.0, 0.9, 0.8]
    assert _frames([], []).empty
