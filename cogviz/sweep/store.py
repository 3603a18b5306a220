"""Writing runs atomically: each run is built in a temporary folder and renamed into place, with
the SHA-256 of every file in its ``run.json``; a run whose files no longer match is redone."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from .identity import FORMAT, Run, _sha


def _file_entry(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha(path.read_bytes())}


def _valid(run_dir: Path) -> dict | None:
    """The run's record when every file it lists is present and unchanged, else None."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
        for f in record["files"]:
            p = run_dir / f["name"]
            if p.stat().st_size != f["bytes"] or _sha(p.read_bytes()) != f["sha256"]:
                return None
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_run(out_dir: Path, run: Run, g, *, metrics: bool, save_latents: bool, fps: float) -> dict:
    from .. import video
    from ..metrics import anchor_metrics, summarize

    runs_dir = out_dir / "runs"
    tmp = runs_dir / f".{run.run_id}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    files = []
    summary = {}
    if metrics:
        df = anchor_metrics(g.frames, g.fitted)
        summary = {k: (bool(v) if k == "dynamic" else float(v)) for k, v in summarize(df, fps=fps).items()}
        df.insert(0, "run_id", run.run_id)
        df.to_parquet(tmp / "frames.parquet", index=False)
        files.append(tmp / "frames.parquet")
    video.save(g.frames, tmp / "video.mp4", fps=fps)
    files.append(tmp / "video.mp4")
    if save_latents:
        from safetensors.torch import save_file

        save_file({"z_img": g.z_img.contiguous().cpu(), "latents.final": g.trace["latents.final"].contiguous()},
                  str(tmp / "latents.safetensors"))
        files.append(tmp / "latents.safetensors")
    record = {"run_id": run.run_id, "config": run.config, "image_name": run.image_name, "label": run.label,
              "summary": summary, "frames": int(len(g.frames)), "finished": time.time(),
              "files": [_file_entry(p) for p in files]}
    (tmp / "run.json").write_text(json.dumps(record, indent=1))
    final = runs_dir / run.run_id
    if final.exists():  # a corrupt earlier copy: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)  # atomic: the run appears whole or not at all
    return record


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "manifest.json"
    sweeps = []
    if path.exists():
        try:
            sweeps = json.loads(path.read_text()).get("sweeps", [])
        except ValueError:
            sweeps = []
    if manifest not in sweeps:
        sweeps.append(manifest)
    tmp = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "sweeps": sweeps}, indent=1))
    os.replace(tmp, path)
