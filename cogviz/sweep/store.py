"""Writing runs atomically: each run is built in a temporary folder and renamed into place, with
the SHA-256 of every file in its ``run.json``; a run whose files no longer match is redone.

Several writers may share one results folder (two kernels, the CLI beside a widget, Ray actors on
shared storage): a lock file (``out_dir/.lock``, ``fcntl.flock``) orders the manifest's
read-modify-write, the clean-up of stale temporary folders and the final rename of each run; each
temporary folder names its writer (host and process id), so a clean-up never deletes a live
writer's run; a run that another writer finished first is kept and the second copy dropped.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from ..errors import SweepError
from .identity import FORMAT, Run, _sha

#: the only files a run may list: a ``run.json`` naming anything else is refused as foreign
RUN_FILES = ("frames.parquet", "video.mp4", "latents.safetensors")
#: a temporary folder of another host (whose process cannot be checked) counts as stale after this
STALE_SECONDS = 24 * 3600
#: the keys a run record must carry, with their types, for ``SweepResult`` to read it
_RECORD = {"run_id": str, "config": dict, "image_name": str, "label": str, "summary": dict, "frames": int,
           "finished": (int, float), "files": list}
_CONFIG = {"image": str, "prompt": str, "seed": int, "ablations": list, "settings": dict, "model": dict}


@contextlib.contextmanager
def locked(out_dir: Path):
    """Hold ``out_dir/.lock`` exclusively (blocking) for the block's duration."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (before the rename that makes it final)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writer() -> str:
    return f"{socket.gethostname().replace('.', '-')}-{os.getpid()}"


def _file_entry(path: Path) -> dict:
    _fsync(path)
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha(path.read_bytes())}


def _problem(run_dir: Path, record) -> str | None:
    """What makes ``record`` not a run record a reader may trust (None when it is one): the keys and
    types a reader needs, the run of its own folder, and only the run files cogviz writes, never a
    path (``../x``, ``/dev/zero``)."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    if record.get("run_id") != run_dir.name:
        return f"its run_id {record.get('run_id')!r} is not its folder's name"
    bad = [k for k, t in _RECORD.items() if not isinstance(record.get(k), t)]
    c = record["config"] if not bad else {}
    bad += [f"config.{k}" for k, t in _CONFIG.items() if c and not isinstance(c.get(k), t)]
    if c and not bad:
        bad += [f"config.settings.{k}" for k in ("steps", "guidance") if k not in c["settings"]]
        bad += [f"config.model.{k}" for k in ("id", "fingerprint") if k not in c["model"]]
    if bad:
        return f"missing or mistyped: {', '.join(bad)}"
    for f in record["files"]:
        if not isinstance(f, dict) or f.get("name") not in RUN_FILES:
            return f"it lists {f.get('name') if isinstance(f, dict) else f!r}; a run's files are {', '.join(RUN_FILES)}"
        if not isinstance(f.get("bytes"), int) or not isinstance(f.get("sha256"), str):
            return f"its entry for {f['name']} lacks bytes or sha256"
    if len({f["name"] for f in record["files"]}) != len(record["files"]):
        return "it lists a file twice"
    return None


def check_run(run_dir: Path) -> tuple[dict | None, str | None]:
    """``(record, None)`` for an intact run; ``(None, why)`` when its ``run.json`` is JSON but not a
    cogviz run record (refused when reading a folder from elsewhere); ``(None, None)`` when the
    record is missing or unreadable or a file no longer matches it (a run to redo). One read."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None, None
    why = _problem(run_dir, record)
    if why is not None:
        return None, why
    try:
        for f in record["files"]:
            p = run_dir / f["name"]
            if p.is_symlink() or not p.is_file() or p.stat().st_size != f["bytes"] or \
                    _sha(p.read_bytes()) != f["sha256"]:
                return None, None
    except OSError:
        return None, None
    return record, None


def _valid(run_dir: Path) -> dict | None:
    """The run's record when it is well formed and every file it lists is present, a regular file,
    and unchanged; else None (the run is redone, or left out when reading)."""
    return check_run(run_dir)[0]


def _write_run(out_dir: Path, run: Run, g, *, metrics: bool, save_latents: bool, fps: float) -> dict:
    from .. import video
    from ..metrics import anchor_metrics, summarize

    runs_dir = out_dir / "runs"
    tmp = runs_dir / f".{run.run_id}.{_writer()}.{uuid.uuid4().hex[:8]}.tmp"
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
    _fsync(tmp / "run.json")
    _fsync(tmp)
    return _place(runs_dir, tmp, run.run_id) or record


def _place(runs_dir: Path, tmp: Path, run_id: str) -> dict | None:
    """Rename a finished temporary run into place, under the folder's lock. When another writer
    placed an intact copy first, that copy stays, this one is dropped and its record returned."""
    final = runs_dir / run_id
    with locked(runs_dir.parent):
        theirs = _valid(final) if final.exists() else None
        if theirs is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return theirs
        if final.exists():  # a corrupt earlier copy (checked above, under the lock): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)  # atomic: the run appears whole or not at all
        _fsync(runs_dir)
    return None


def _writer_alive(name: str) -> bool:
    """Whether the writer named in a temporary folder's name (``.RUN.HOST-PID.RAND.tmp``) may still
    be running: on this host, whether its process exists; a writer on another host (or a name of
    an older format) cannot be checked from here, so it counts as alive."""
    parts = name.split(".")
    if len(parts) != 5:
        return True
    host, _, pid = parts[2].rpartition("-")
    if host != socket.gethostname().replace(".", "-") or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(out_dir: Path) -> list[str]:
    """Delete the temporary folders of writers that are gone (a sweep killed mid-run), never those
    of a writer still running: on this host its process is checked, elsewhere only folders older
    than ``STALE_SECONDS`` go. Returns the names removed."""
    removed = []
    with locked(out_dir):
        for tmp in (out_dir / "runs").glob(".*.tmp"):
            try:
                old = time.time() - tmp.stat().st_mtime > STALE_SECONDS
            except OSError:
                continue
            if old or not _writer_alive(tmp.name):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp.name)
        for tmp in out_dir.glob(".manifest.*.tmp"):
            if time.time() - tmp.stat().st_mtime > 60:
                tmp.unlink(missing_ok=True)
    return removed


def read_manifest(out_dir: Path) -> list[dict]:
    """The sweeps recorded in ``out_dir/manifest.json`` ([] when there is none yet). A manifest
    that is not cogviz's JSON is reported, never silently reset."""
    path = out_dir / "manifest.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise SweepError(f"{path} is corrupt ({e}); the runs in {out_dir / 'runs'} are intact: move the file "
                         "aside and sweep again to write a new one") from None
    if not isinstance(data, dict) or not isinstance(data.get("sweeps", []), list):
        raise SweepError(f"{path} is not a cogviz manifest (expected an object with a 'sweeps' list); "
                         "is this folder a sweep's results?")
    return data.get("sweeps", [])


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "manifest.json"
    with locked(out_dir):  # read-modify-write: no other writer's entry is lost
        sweeps = read_manifest(out_dir)
        if manifest not in sweeps:
            sweeps.append(manifest)
        tmp = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "sweeps": sweeps}, indent=1))
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(out_dir)
