"""Natural images for the embedded toy model: photographs, dead leaves, fractal noise, gradients.

Shapes world alone teaches the toy model nothing about photographs: on a user's picture its VAE
and its transformer meet statistics they never saw. This module supplies the images that close
that gap, and the clips made from them:

* **Photographs** that well-kept packages ship. Training uses scikit-image's ``skimage.data``
  (two of them, ``split="val"``, only for the validation figures logged during training);
  evaluation uses photographs from *other* sources (matplotlib's and scikit-learn's sample
  images), so no held-out figure is measured on an image any stage of training saw.
  :data:`PHOTOS` records each one's source and licence (the model card prints it).
* **Dead leaves** (occluding disks with power-law sizes, each with its own texture): a procedural
  model with the scale invariance, edges and occlusions of natural images, known to train image
  models that transfer to photographs.
* **Fractal noise** (1/f^a spectra) and **gradients** with texture: smooth and rough extremes.

Augmentation: random windows at random scales, flips, colour jitter (brightness, contrast,
saturation, per-channel gain). Every image is ``uint8 (H, W, 3)``; every function draws from the
``numpy.random.Generator`` it is given, so a clip is reproducible from its seed.

Camera clips (:func:`camera_clip`) move a window over a still canvas: "the camera pans left" shows
the view travelling left, so the content slides right across the frame; "the camera zooms in"
narrows the window around its centre; "the camera holds still" (:data:`STILL`) keeps it where it is.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "PHOTOS", "Photo", "photo", "training_photos", "heldout_views",
    "dead_leaves", "fractal_noise", "gradient_image", "colour_jitter", "SourcePool",
    "CAMERA_MOVES", "STILL", "CAMERA_TRAVEL", "camera_prompt", "camera_clip",
]


@dataclass(frozen=True)
class Photo:
    name: str
    package: str     # the package that ships it
    loader: str      # how to load it, for the model card
    licence: str
    split: str       # "train", "val" (training's validation figures) or "heldout" (evaluation only)


PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut", "scikit-image", "skimage.data.astronaut()", "public domain (NASA)", "train"),
    Photo("chelsea", "scikit-image", "skimage.data.chelsea()", "CC0 (Stefan van der Walt)", "train"),
    Photo("coffee", "scikit-image", "skimage.data.coffee()", "CC0 (Rachel Michetti)", "val"),
    Photo("rocket", "scikit-image", "skimage.data.rocket()", "public domain (SpaceX)", "val"),
    Photo("motorcycle", "scikit-image", "skimage.data.stereo_motorcycle()[0]",
          "Middlebury stereo dataset (Scharstein et al. 2014), research use", "train"),
    Photo("retina", "scikit-image", "skimage.data.retina()", "CC0 (Mikael Haggstrom)", "train"),
    Photo("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field()",
          "public domain (NASA)", "train"),
    Photo("immunohistochemistry", "scikit-image", "skimage.data.immunohistochemistry()",
          "public domain (scikit-image data)", "train"),
    Photo("camera", "scikit-image", "skimage.data.camera()", "CC0 (Lav Varshney)", "train"),
    Photo("coins", "scikit-image", "skimage.data.coins()", "no known restrictions (Brooklyn Museum)", "train"),
    Photo("moon", "scikit-image", "skimage.data.moon()", "public domain (scikit-image data)", "train"),
    Photo("brick", "scikit-image", "skimage.data.brick()", "CC0 (CC0Textures)", "train"),
    Photo("grass", "scikit-image", "skimage.data.grass()", "CC0 (DeviantArt linolafett)", "train"),
    Photo("gravel", "scikit-image", "skimage.data.gravel()", "CC0 (CC0Textures)", "train"),
    Photo("clock", "scikit-image", "skimage.data.clock()", "public domain (Stefan van der Walt)", "train"),
    Photo("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
          "public domain (US Navy)", "heldout"),
    Photo("china", "scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')",
          "CC BY 2.0 (danielbuechele)", "heldout"),
    Photo("flower", "scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')",
          "CC BY 2.0 (vultilion)", "heldout"),
)
_MAX_SIDE = 640  # sources are kept at most this large: a 64 x 96 view never needs more


def _as_rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    return np.ascontiguousarray(a[..., :3].astype(np.uint8))


@functools.cache
def photo(name: str) -> np.ndarray:
    """One photograph of :data:`PHOTOS` as ``uint8 (H, W, 3)``, at most 640 px on its long side."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            a = np.asarray(Image.open(f).convert("RGB"))
    elif name in ("china", "flower"):
        try:
            from sklearn.datasets import load_sample_image
        except ImportError as e:  # a training / evaluation extra, not a runtime dependency
            raise ImportError(f"the held-out photograph {name!r} ships with scikit-learn: "
                              "pip install 'cogviz[train]'") from e
        a = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data as data

        a = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    img = Image.fromarray(_as_rgb(a))
    scale = _MAX_SIDE / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    return np.asarray(img)


def training_photos() -> list[np.ndarray]:
    return [photo(p.name) for p in PHOTOS if p.split == "train"]


# ------------------------------------------------------------------------------ procedural images
def _random_colour(rng: np.random.Generator) -> np.ndarray:
    # The whole RGB cube, with a bias to the muted colours natural scenes are made of.
    c = rng.uniform(0, 255, size=3)
    grey = c.mean()
    return grey + (c - grey) * rng.uniform(0.2, 1.0)


def fractal_noise(rng: np.random.Generator, h: int, w: int, *, alpha: float | None = None,
                  colour: bool = True) -> np.ndarray:
    """Noise with a ``1 / f^alpha`` amplitude spectrum (alpha in [1, 2.5]), ``float (H, W, 3)`` in [0, 1]."""
    alpha = float(rng.uniform(1.0, 2.5)) if alpha is None else alpha
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    amp = f ** -alpha
    amp[0, 0] = 0.0
    n = 3 if colour else 1
    spec = amp * (rng.normal(size=(n, h, fx.shape[1])) + 1j * rng.normal(size=(n, h, fx.shape[1])))
    x = np.fft.irfft2(spec, s=(h, w)).transpose(1, 2, 0)
    if colour:  # correlated channels, as in photographs: a shared luminance plus some chroma
        mix = rng.uniform(0.0, 0.6)
        x = x[..., :1] + mix * (x - x[..., :1])
    x = (x - x.mean()) / (x.std() + 1e-8)
    lo, hi = sorted(rng.uniform(0, 1, size=2))
    out = 0.5 + x * rng.uniform(0.08, 0.25)
    tint = _random_colour(rng) / 255.0
    out = out * (0.5 + tint) - 0.25 * (hi - lo)
    return np.clip(out, 0, 1) if out.ndim == 3 else np.clip(np.repeat(out[..., None], 3, -1), 0, 1)


def gradient_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A linear or radial blend of two or three colours, ``float (H, W, 3)`` in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:
        a = rng.uniform(0, np.pi)
        t = yy * np.sin(a) + xx * np.cos(a)
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    cols = [_random_colour(rng) / 255.0 for _ in range(3)]
    if rng.random() < 0.5:
        img = cols[0] + t[..., None] * (cols[1] - cols[0])
    else:
        img = np.where(t[..., None] < 0.5, cols[0] + 2 * t[..., None] * (cols[1] - cols[0]),
                       cols[1] + (2 * t[..., None] - 1) * (cols[2] - cols[1]))
    return np.clip(img, 0, 1)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A texture for one leaf: flat, stripes, fractal noise or a gradient, ``float (H, W, 3)``."""
    kind = rng.choice(4, p=[0.3, 0.2, 0.3, 0.2])
    base = _random_colour(rng) / 255.0
    if kind == 0:
        return np.broadcast_to(base, (h, w, 3))
    if kind == 1:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, np.pi)
        period = rng.uniform(3, 16)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * (yy * np.sin(a) + xx * np.cos(a)) / period)
        other = _random_colour(rng) / 255.0
        return base + s[..., None] * (other - base)
    if kind == 2:
        n = fractal_noise(rng, h, w, colour=False)
        return np.clip(base + (n - n.mean()) * rng.uniform(0.5, 1.5), 0, 1)
    return gradient_image(rng, h, w)


def dead_leaves(rng: np.random.Generator, h: int, w: int, *, r_min: float = 1.5,
                r_max: float | None = None, leaves: int | None = None) -> np.ndarray:
    """The dead-leaves model: textured disks with sizes ~ r^-3, dropped until the canvas is covered.

    Returns ``float (H, W, 3)`` in [0, 1]. Later leaves occlude earlier ones, as objects do.
    """
    r_max = r_max or 0.4 * min(h, w)
    leaves = leaves or int(rng.integers(150, 500))
    # p(r) ~ r^-3 on [r_min, r_max]: inverse-CDF sampling.
    u = rng.random(leaves)
    a, b = r_min ** -2, r_max ** -2
    radii = (a - u * (a - b)) ** -0.5
    img = _texture(rng, h, w).copy()
    yy, xx = np.ogrid[0:h, 0:w]
    for r in radii:
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, h)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        d = np.sqrt((yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2)
        cover = np.clip(r + 0.5 - d, 0, 1)[..., None]  # anti-aliased edge
        if rng.random() < 0.25:  # some leaves are flat: cheaper, and natural scenes have both
            tex = _random_colour(rng) / 255.0
        else:
            tex = _texture(rng, y1 - y0, x1 - x0)
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - cover) + tex * cover
    return np.clip(img, 0, 1)


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Brightness, contrast, saturation and per-channel gain jitter on ``uint8``/``float`` images.

    Works on any ``(..., 3)`` array in [0, 1] (float) and returns float in [0, 1]; the same
    jitter applies to every frame of a clip.
    """
    x = img.astype(np.float32)
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * (1 + strength * rng.uniform(-0.5, 0.5))          # saturation
    x = x * (1 + strength * rng.uniform(-0.12, 0.12, size=3))                 # white balance
    m = x.mean()
    x = m + (x - m) * (1 + strength * rng.uniform(-0.35, 0.35))               # contrast
    x = x + strength * rng.uniform(-0.15, 0.15)                               # brightness
    return np.clip(x, 0, 1)


class SourcePool:
    """Source canvases to cut views and camera moves from: every training photograph (and its
    mirror image) plus ``procedural`` generated canvases (dead leaves 70 %, fractal noise 18 %,
    gradients 12 %) at ``size``. Building it once per training stage keeps data generation far
    cheaper than the model's step: a view is a crop, a resize and a colour jitter.
    """

    def __init__(self, seed: int = 0, procedural: int = 256, size: tuple[int, int] = (192, 288),
                 photos: bool = True):
        rng = np.random.default_rng([seed, 31337])
        self.photos: list[Image.Image] = []
        if photos:
            for a in training_photos():
                self.photos += [Image.fromarray(a), Image.fromarray(np.ascontiguousarray(a[:, ::-1]))]
        h, w = size
        self.procedural: list[Image.Image] = []
        for _ in range(procedural):
            u = rng.random()
            if u < 0.70:
                a = dead_leaves(rng, h, w)
            elif u < 0.88:
                a = fractal_noise(rng, h, w)
            else:
                a = np.clip(gradient_image(rng, h, w) + 0.03 * (fractal_noise(rng, h, w) - 0.5), 0, 1)
            self.procedural.append(_to_pil(a))

    def source(self, rng: np.random.Generator, kind: str | None = None) -> Image.Image:
        """A photo (half the time, when the pool has photos) or a procedural canvas."""
        if kind is None:
            kind = "photo" if self.photos and rng.random() < 0.5 else "procedural"
        items = self.photos if kind == "photo" else self.procedural
        return items[int(rng.integers(len(items)))]

    def view(self, rng: np.random.Generator, h: int = 64, w: int = 96, kind: str | None = None,
             jitter: float | None = None) -> np.ndarray:
        """One natural image ``uint8 (h, w, 3)``: a window of a random source at a random scale."""
        src = self.source(rng, kind)
        y, x, hh, ww = _window(rng, src.height, src.width, w / h, 0.12 if src.height > 4 * h else 0.4)
        a = np.asarray(src.resize((w, h), Image.BICUBIC, box=(x, y, x + ww, y + hh), reducing_gap=2.0))
        return _jitter_u8(a, rng, jitter)

    def camera_clip(self, rng: np.random.Generator, move: str | None = None, **kwargs):
        """:func:`camera_clip` over a source of this pool, colour-jittered as a whole."""
        jitter = kwargs.pop("jitter", None)
        frames, move = camera_clip(rng, move, source=self.source(rng, kwargs.pop("kind", None)), **kwargs)
        return _jitter_u8(frames, rng, jitter), move


def _jitter_u8(a: np.ndarray, rng: np.random.Generator, strength: float | None) -> np.ndarray:
    strength = float(rng.uniform(0.0, 1.0)) if strength is None else strength
    if strength == 0:
        return a
    return (colour_jitter(a.astype(np.float32) / 255.0, rng, strength) * 255 + 0.5).astype(np.uint8)


def _to_pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))


def _window(rng, src_h: int, src_w: int, aspect: float, min_frac: float, margin: float = 1.0):
    """A random window (y, x, h, w) of the given aspect (w / h) inside a src_h x src_w source.

    ``margin`` >= 1 keeps room around the window (a camera move needs it).
    """
    hmax = min(src_h, src_w / aspect) / margin
    hh = float(rng.uniform(min_frac, 1.0) * hmax)
    ww = hh * aspect
    y = float(rng.uniform(0, src_h - hh))
    x = float(rng.uniform(0, src_w - ww))
    return y, x, hh, ww


def heldout_views(h: int = 64, w: int = 96, per_photo: int = 8, split: str = "heldout"
                  ) -> list[tuple[str, np.ndarray]]:
    """The evaluation images: each photograph of ``split`` fitted whole (centre crop to the
    model's aspect) plus ``per_photo - 1`` fixed sub-windows (zoomed 1.5x-3x), ``uint8 (h, w, 3)``.

    Deterministic. ``"heldout"`` photographs never appear in training; ``"val"`` ones are the
    validation figures training logs.
    """
    from ..fit import fit_image

    out = []
    for p in PHOTOS:
        if p.split != split:
            continue
        img = Image.fromarray(photo(p.name))
        out.append((f"{p.name}/fit", np.asarray(fit_image(img, (h, w), mode="crop").image)))
        rng = np.random.default_rng([7, len(out)])
        for k in range(per_photo - 1):
            zoom = 1.5 + 1.5 * k / max(per_photo - 2, 1)
            hh = min(img.height, img.width * h / w) / zoom
            ww = hh * w / h
            y = float(rng.uniform(0, img.height - hh))
            x = float(rng.uniform(0, img.width - ww))
            view = img.resize((w, h), Image.LANCZOS, box=(x, y, x + ww, y + hh))
            out.append((f"{p.name}/zoom{zoom:.2f}", np.asarray(view)))
    return out


# ---------------------------------------------------------------------------------- camera clips
#: Camera moves and the window's motion per unit of travel: (dy, dx, dzoom). Pan left = the view
#: travels left (content slides right); zoom in = the window narrows (content grows).
CAMERA_MOVES: dict[str, tuple[float, float, float]] = {
    "pans left": (0, -1, 0), "pans right": (0, 1, 0), "pans up": (-1, 0, 0), "pans down": (1, 0, 0),
    "zooms in": (0, 0, -1), "zooms out": (0, 0, 1),
}

#: The camera that does not move: "the camera holds still" (every frame the same window).
STILL = "holds still"
#: How far a camera move travels over a clip, as a share of the window (drawn uniformly).
CAMERA_TRAVEL: tuple[float, float] = (0.15, 0.30)


def _window_motion(move: str) -> tuple[float, float, float]:
    if move == STILL:
        return (0, 0, 0)
    if move not in CAMERA_MOVES:
        raise ValueError(f"camera move {move!r} is not one of {', '.join(map(repr, [*CAMERA_MOVES, STILL]))}")
    return CAMERA_MOVES[move]


def camera_prompt(move: str) -> str:
    """``"the camera pans left"`` for the move ``"pans left"``."""
    return f"the camera {move}"


def camera_clip(rng: np.random.Generator, move: str | None = None, *, h: int = 64, w: int = 96,
                num_frames: int = 17, kind: str | None = None, travel: float | None = None,
                travel_range: tuple[float, float] = CAMERA_TRAVEL,
                source: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """A camera move over a still canvas: ``(uint8 (F, h, w, 3), move)``.

    Pans travel ``travel`` (default: drawn from ``travel_range``, 15-30 %) of the window's width
    or height over the clip; zooms change the window's size by the same fraction; :data:`STILL`
    repeats the first window. ``source`` (a PIL image or ``uint8 (H, W, 3)``) is the still canvas;
    without one, a random training photo or procedural canvas is drawn.
    """
    move = move or str(rng.choice(list(CAMERA_MOVES)))
    dy, dx, dz = _window_motion(move)
    travel = float(rng.uniform(*travel_range)) if travel is None else travel
    if source is None:
        source = SourcePool(int(rng.integers(2**31)), procedural=1, photos=kind != "procedural").source(rng, kind)
    pil = source if isinstance(source, Image.Image) else Image.fromarray(np.asarray(source, np.uint8))
    sh, sw = pil.height, pil.width
    margin = 1 + travel * 1.05
    y, x, hh, ww = _window(rng, sh, sw, w / h, 0.25 if sh > 4 * h else 0.6, margin=margin)
    # The whole path must stay inside the source: place the start so that the end fits too.
    if dx:
        x = float(rng.uniform(0, sw - ww * (1 + travel))) + (ww * travel if dx < 0 else 0.0)
    if dy:
        y = float(rng.uniform(0, sh - hh * (1 + travel))) + (hh * travel if dy < 0 else 0.0)
    if dz > 0:  # zoom out: the window grows around its centre up to (1 + travel)
        cy, cx = float(rng.uniform(hh * margin / 2, sh - hh * margin / 2)), float(rng.uniform(ww * margin / 2, sw - ww * margin / 2))
        y, x = cy - hh / 2, cx - ww / 2
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for f in range(num_frames):
        t = f / max(num_frames - 1, 1)
        s = 1 + dz * travel * t if dz >= 0 else 1 / (1 + travel * t)
        fh, fw = hh * s, ww * s
        cy = y + hh / 2 + dy * travel * hh * t
        cx = x + ww / 2 + dx * travel * ww * t
        box = (cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2)
        frames[f] = np.asarray(pil.resize((w, h), Image.BICUBIC, box=box, reducing_gap=2.0))
    return frames, move
