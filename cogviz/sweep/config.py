"""Sweep config files (JSON or YAML): the keys, their types, and one clear error for each mistake."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import SweepError
from .identity import _variant

CONFIG_KEYS = {"model": str, "images": list, "prompts": list, "seeds": list, "ablations": list, "steps": int,
               "guidance": (int, float), "num_frames": int, "fit": str, "negative_prompt": str, "metrics": bool,
               "save_latents": bool, "include_baseline": bool, "dynamic_cfg": bool, "size": list,
               "max_record_bytes": int}
#: Settings fields a sweep sets itself, with why (a config naming one is told)
SWEEP_SETS = {"seed": "use 'seeds', a list", "record": "a sweep records the final latents with save_latents",
              "decode_video": "a sweep decodes every video to measure it",
              "attention_layers": "a sweep keeps videos and metrics, not traces",
              "num_inference_steps": "the key is 'steps'", "guidance_scale": "the key is 'guidance'"}


REQUIRED = ("images", "prompts")


def load_config(path) -> dict:
    """A sweep configuration from a JSON or YAML file: ``images`` (paths or URLs, relative paths taken
    from the file's folder), ``prompts``, ``seeds`` (default [0]), ``ablations`` (a list of variants:
    an ablation dict or a list of them), ``model`` (default "toy") and the settings ``steps``,
    ``guidance``, ``num_frames``, ``fit``, ``negative_prompt``, ``dynamic_cfg``, ``size`` ([height,
    width]), ``max_record_bytes``, ``metrics``, ``save_latents``, ``include_baseline`` — every
    :class:`~cogviz.Settings` field a sweep's runs can differ by. Every key and type is checked; the error names the key, the value and
    what is accepted."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepError(f"config {str(path)!r}: cannot read it ({e.strerror})") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # yaml and json raise their own types
        raise SweepError(f"config {str(path)!r}: not valid {'YAML' if path.suffix.lower() in ('.yml', '.yaml') else 'JSON'} "
                         f"({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise SweepError(f"config {str(path)!r}: expected a mapping of keys ({', '.join(CONFIG_KEYS)}), "
                         f"got {type(data).__name__}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown and unknown[0] in SWEEP_SETS:
        raise SweepError(f"config key {unknown[0]!r}: not a sweep setting ({SWEEP_SETS[unknown[0]]})")
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(CONFIG_KEYS), n=1)
        raise SweepError(f"config key {unknown[0]!r}: unknown{f' (did you mean {close[0]!r}?)' if close else ''}; "
                         f"accepted keys: {', '.join(CONFIG_KEYS)}")
    for key in REQUIRED:
        if key not in data:
            raise SweepError(f"config key {key!r}: missing; a sweep needs {' and '.join(REQUIRED)}")
    for key, value in data.items():
        want = CONFIG_KEYS[key]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            names = {str: "text", list: "a list", int: "a whole number", bool: "true or false",
                     (int, float): "a number"}[want]
            raise SweepError(f"config key {key!r}: {value!r} is {type(value).__name__}; expected {names}")
    size = data.get("size")
    if size is not None and not (len(size) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                                                         for x in size)):
        raise SweepError(f"config key 'size': {size!r}; expected [height, width] in pixels, e.g. [480, 720]")
    for v in data.get("ablations", []):
        _variant(v)  # a bad ablation fails here, before any model loads
    for i, p in enumerate(data["images"]):
        if not isinstance(p, str):
            raise SweepError(f"config key 'images'[{i}]: {p!r}; expected a path or an http(s) URL")
        if not p.startswith(("http://", "https://")) and not Path(p).is_absolute():
            data["images"][i] = str((path.parent / p).resolve())
    return data
