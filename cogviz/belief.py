"""When the video is decided: the model's belief at every step, decoded.

``step/{i}/x0`` is the clean latent the sampler predicts at step i (the scheduler's own
``pred_original_sample``). Decoded with the VAE, it is what the model believes the finished video
is at that step; :func:`belief_frames` decodes the recorded steps, :func:`belief_table` measures each
belief's frames against the conditioning image and against the video the call ended with (SSIM,
:mod:`cogviz.metrics`' definition), and :func:`belief_strip` draws frames x steps. A frame is
"decided" at the step from which its belief stays close to its final look.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .errors import NotRecordedError

__all__ = ["belief_frames", "belief_table", "belief_strip", "belief_curve", "decided_at"]


def belief_frames(pipe, trace, steps=None) -> dict[int, np.ndarray]:
    """``{step: uint8 (F, H, W, 3)}``: each recorded (or chosen) step's ``x0`` decoded, 1.5's padding
    frames dropped as the sampler drops them."""
    from .encode import decode_latents

    recorded = trace.steps("x0")
    if not recorded:
        raise NotRecordedError("no step/{i}/x0 in this trace: record it, e.g. record=('step/*/x0', 'frames')")
    steps = recorded if steps is None else list(steps)
    missing = sorted(set(steps) - set(recorded))
    if missing:
        raise NotRecordedError(f"steps {missing} of x0 are not in this trace; it holds steps {recorded}")
    pad = int(trace.meta.get("plan", {}).get("pad", 0))
    device, dtype = pipe.vae.device, pipe.vae.dtype
    out = {}
    with torch.no_grad():
        for i in steps:
            video = decode_latents(pipe, trace[f"step/{i}/x0"].to(device, dtype), drop=pad)[0]
            out[i] = (video.float().cpu().numpy() * 255).round().astype(np.uint8)
    return out


def belief_table(pipe, trace, image, steps=None) -> pd.DataFrame:
    """A tidy table ``step, frame, ssim_to_image, ssim_to_final``: each decoded belief's frames against
    the conditioning ``image`` and against the call's own final frames (``trace["frames"]``)."""
    from .metrics import anchor_metrics

    final = trace["frames"].numpy() if "frames" in trace else None
    if final is None:
        raise NotRecordedError("the trace holds no decoded frames: record 'frames' (the default) to compare "
                               "each belief with the video the call ended with")
    rows = []
    for i, frames in belief_frames(pipe, trace, steps).items():
        to_image = anchor_metrics(frames, image)["ssim"].to_numpy()
        to_final = [float(anchor_metrics(frames[f:f + 1], final[f])["ssim"].iloc[0]) for f in range(len(frames))]
        rows += [dict(step=i, frame=f, ssim_to_image=float(a), ssim_to_final=b)
                 for f, (a, b) in enumerate(zip(to_image, to_final))]
    return pd.DataFrame(rows)


def decided_at(table: pd.DataFrame, frame: int, *, threshold: float = 0.9) -> int | None:
    """The first step from which ``frame``'s belief stays at SSIM >= ``threshold`` to its final look
    (None: never within the recorded steps)."""
    t = table[table["frame"] == frame].sort_values("step")
    ok = (t["ssim_to_final"] >= threshold).to_numpy()
    for k in range(len(ok)):
        if ok[k:].all():
            return int(t["step"].iloc[k])
    return None


def belief_strip(beliefs: dict[int, np.ndarray], frames=(0, -1), *, zoom: int | None = None):
    """A picture: one row per step (its decoded belief), the chosen ``frames`` side by side."""
    from .viz import frame_strip, picture

    rows = []
    for i, video in beliefs.items():
        idx = [f % len(video) for f in frames]
        rows.append(frame_strip(video, idx, titles=[f"step {i}, frame {f}" for f in idx], zoom=zoom).to_array())
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return picture(np.concatenate(rows))


def belief_curve(table: pd.DataFrame, frames=(0, 12), *, of: str = "ssim_to_final", threshold: float | None = 0.9):
    """A picture: for each of ``frames``, its belief's SSIM (to its final look, or ``of="ssim_to_image"``)
    against the step, with the ``threshold`` :func:`decided_at` uses drawn across."""
    from matplotlib.figure import Figure

    from .viz import picture

    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    for f in frames:
        t = table[table["frame"] == f].sort_values("step")
        ax.plot(t["step"], t[of], marker="o", ms=3, label=f"frame {f}")
    if threshold is not None and of == "ssim_to_final":
        ax.axhline(threshold, color="grey", lw=1, ls="--", label=f"decided: {threshold}")
    ax.set(xlabel="step", ylabel="SSIM to its final look" if of == "ssim_to_final" else "SSIM to the image",
           title="when each frame is decided: the belief at each step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return picture(fig)
