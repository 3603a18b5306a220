"""Small sample images made by cogviz itself, shipped in the package so everything works offline.

``python -m cogviz.samples`` regenerates them (deterministically) from the drawing code below.

| name              | size (w x h) | what it teaches                                        |
|-------------------|--------------|--------------------------------------------------------|
| ``shapes``        | 720 x 480    | a toy-world scene at exactly the 5b-I2V size (2:3)     |
| ``lighthouse``    | 400 x 600    | a portrait: crop loses the top and bottom, pad adds bars |
| ``panorama``      | 1200 x 360   | a very wide image: stretch distorts it badly           |
| ``badge``         | 512 x 512    | a square with transparency (composited on white)       |
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["SAMPLES", "sample_path", "load_sample", "make_samples"]

_DIR = Path(__file__).parent
SAMPLES: dict[str, str] = {
    "shapes": "shapes.png",
    "lighthouse": "lighthouse.png",
    "panorama": "panorama.jpg",
    "badge": "badge.png",
}


def sample_path(name: str) -> Path:
    """Path of a shipped sample image."""
    if name not in SAMPLES:
        from ..errors import ImageLoadError

        raise ImageLoadError(f"unknown sample {name!r}; samples are {', '.join(SAMPLES)}")
    return _DIR / SAMPLES[name]


def load_sample(name: str) -> Image.Image:
    """A shipped sample as an RGB image (through :func:`cogviz.load_image`)."""
    from ..image import load_image

    return load_image(sample_path(name))


def _vertical_gradient(w, h, top, bottom):
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    for y in range(h):
        a = y / max(h - 1, 1)
        d.line([(0, y), (w, y)], fill=tuple(int(t + (b - t) * a) for t, b in zip(top, bottom)))
    return img


def _shapes() -> Image.Image:
    from ..toy.scenes import render_scene, sample_scene

    scene = sample_scene(7, height=480, width=720, colour="red", shape="circle", direction="right")
    return Image.fromarray(render_scene(scene, frames=[0])[0])


def _lighthouse() -> Image.Image:
    w, h = 400, 600
    img = _vertical_gradient(w, h, (120, 170, 230), (235, 225, 200))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 430, w, h], fill=(40, 90, 150))
    d.polygon([(0, 470), (150, 400), (260, 440), (400, 420), (400, 600), (0, 600)], fill=(90, 80, 70))
    d.rectangle([170, 180, 230, 430], fill=(240, 240, 240))
    for y in range(200, 430, 60):
        d.rectangle([170, y, 230, y + 25], fill=(200, 40, 40))
    d.rectangle([160, 150, 240, 180], fill=(60, 60, 60))
    d.polygon([(160, 150), (200, 110), (240, 150)], fill=(200, 40, 40))
    d.ellipse([185, 155, 215, 178], fill=(255, 230, 120))
    return img


def _panorama() -> Image.Image:
    w, h = 1200, 360
    img = _vertical_gradient(w, h, (250, 180, 120), (120, 150, 210))
    d = ImageDraw.Draw(img)
    d.ellipse([880, 60, 980, 160], fill=(255, 240, 170))
    d.polygon([(0, 260), (200, 150), (420, 240), (640, 130), (900, 250), (1200, 170), (1200, 360), (0, 360)],
              fill=(70, 110, 80))
    d.polygon([(0, 320), (300, 260), (700, 310), (1000, 270), (1200, 300), (1200, 360), (0, 360)],
              fill=(40, 80, 55))
    for x in range(60, 1200, 140):  # circles drawn round: stretching makes them ovals
        d.ellipse([x, 290, x + 40, 330], fill=(230, 230, 90))
    return img


def _badge() -> Image.Image:
    img = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse([56, 56, 456, 456], fill=(40, 80, 225, 255))
    d.ellipse([136, 136, 376, 376], fill=(235, 210, 40, 255))
    d.polygon([(256, 170), (340, 330), (172, 330)], fill=(40, 175, 60, 255))
    return img


def make_samples(directory: Path = _DIR) -> list[Path]:
    """Draw every sample into ``directory``; returns the written paths."""
    out = []
    for name, make in (("shapes", _shapes), ("lighthouse", _lighthouse), ("panorama", _panorama),
                       ("badge", _badge)):
        path = Path(directory) / SAMPLES[name]
        img = make()
        if path.suffix == ".jpg":
            img.save(path, quality=90)
        else:
            img.save(path, optimize=True)
        out.append(path)
    return out

