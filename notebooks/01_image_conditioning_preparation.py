# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1 — Preparing the conditioning image
#
# CogVideoX image-to-video (I2V) takes a reference image as the **first frame and visual anchor**
# of the video. Before the model sees it, the image must be *loaded* (any source, the right
# orientation and colours) and *fitted* to exactly the size the model was built for.
# This lesson is about that first step, and about what each way of fitting does to the pixels.
#
# The parameters cell below is tagged `parameters`: change it to try your own image.

# %% tags=["parameters"]
SAMPLE = "lighthouse"          # one of cogviz.SAMPLES, or a path / http(s) URL
PRESET = "CogVideoX-5b-I2V"    # or "CogVideoX1.5-5B-I2V", "cogviz-toy"

# %%
import numpy as np
from IPython.display import display
from PIL import Image

import cogviz
from cogviz import SAMPLES, load_sample, sample_path, viz

# %% [markdown]
# ## 1. Why the model wants exactly 480 x 720
#
# CogVideoX-5b-I2V works on the VAE's latents, not on pixels. The VAE compresses **8x** in
# height and width (and 4x in time), so a 480 x 720 frame becomes a 60 x 90 latent. The
# transformer then cuts the latent into 2 x 2 patches, one token each:
#
# $$\frac{480}{8 \cdot 2} \times \frac{720}{8 \cdot 2} = 30 \times 45 = 1350 \text{ tokens per latent frame.}$$
#
# 49 frames give $(49 - 1)/4 + 1 = 13$ latent frames, so 17 550 video tokens (plus 226 text
# tokens). The 5b-I2V transformer adds **learned** positional embeddings for exactly that grid,
# which is why it accepts 480 x 720 and nothing else. CogVideoX 1.5 uses only rotary embeddings:
# its short side is 768 and its long side may grow to 1360 (multiples of 16).

# %%
preset = cogviz.get_preset(PRESET)
h, w = preset.size
tokens_per_frame = (h // 16) * (w // 16)
latent_frames = (preset.num_frames - 1) // 4 + 1
print(f"{preset.name}: {h}x{w}, {preset.num_frames} frames -> {latent_frames} latent frames x "
      f"{tokens_per_frame} tokens = {latent_frames * tokens_per_frame} video tokens")

# %% [markdown]
# ## 2. Loading: any source, always RGB, always upright
#
# `cogviz.load_image` takes a path, a URL, bytes, an upload, a PIL image, a numpy array or a
# tensor, and returns an RGB `PIL.Image`. It applies the EXIF orientation (phones store
# portraits sideways), converts every colour mode to RGB and composites transparency onto a
# background colour instead of letting it turn black. The `badge` sample is transparent:

# %%
source = load_sample(SAMPLE) if SAMPLE in SAMPLES else cogviz.load_image(SAMPLE)
badge = cogviz.load_image(sample_path("badge"))
naive = Image.open(sample_path("badge")).convert("RGB")  # plain PIL: alpha is dropped
# every cogviz renderer returns a viz.Picture: an array that shows itself as a PNG
viz.rgb_tiles([np.asarray(im) for im in (source, badge, naive)],
              [f"{SAMPLE} {source.size[0]}x{source.size[1]}", "badge via load_image (white)",
               "badge, alpha dropped (black)"])

# %% [markdown]
# ## 3. Fitting: three honest choices
#
# The source rarely has the model's aspect ratio (3:2). Something has to give:
#
# | mode | scale factor $s$ | what it costs |
# |---|---|---|
# | `crop` | $\max(W_t/W_s,\ H_t/H_s)$ (cover) | the overflow is cut away |
# | `pad` | $\min(W_t/W_s,\ H_t/H_s)$ (fit inside) | part of the canvas is fill, not image |
# | `stretch` | $W_t/W_s$ and $H_t/H_s$ separately | shapes are distorted by $\lvert s_x/s_y - 1\rvert$ |
#
# For the 400 x 600 lighthouse into 720 x 480: cover scale $\max(1.8, 0.8) = 1.8$ keeps a
# 400 x 266.7 window, so **55.6 %** of the source is cropped; fit scale $0.8$ gives a 320 x 480
# image on a 720-wide canvas, so **55.6 %** of the canvas is padding; stretching scales x by 1.8
# and y by 0.8, a **125 %** distortion. `fit_image` reports exactly these numbers.

# %%
fits = {mode: cogviz.fit_image(source, PRESET, mode) for mode in ("crop", "pad", "stretch")}
for fitted in fits.values():
    display(viz.picture(fitted.image, title=fitted.report.summary(), width=480))
for mode, fitted in fits.items():
    r = fitted.report
    print(f"{mode:8s} crop box={tuple(round(v, 1) for v in r.crop_box) if r.crop_box else None} "
          f"image on canvas={r.image_box}")

# %% [markdown]
# ### Why `crop` is the default
#
# The diffusers pipeline simply **stretches** whatever it is given to height x width. The
# official CogVideoX 1.0 sampling code (THUDM/CogVideo `sat/sample_video.py`,
# `resize_for_rectangle_crop(..., "center")`) and the released fine-tuning data loader
# (`sat/data_video.py`) resize keeping the aspect ratio and take a **centre crop**; the pretraining
# data pipeline is not public, and the 1.5 SAT sampler resizes keeping the aspect ratio without
# cropping. A model has only learned the statistics of what it
# was shown: crops look like its training frames, stretched or letterboxed frames do not. Crop
# loses content at the borders, so `fit_image` lets you move the window with a focus point:

# %%
top = cogviz.fit_image(source, PRESET, "crop", focus=(0.5, 0.0))
bottom = cogviz.fit_image(source, PRESET, "crop", focus=(0.5, 1.0))
blurred = cogviz.fit_image(source, PRESET, "pad", fill="blur")
viz.picture(viz.rgb_tiles([f.to_array() for f in (top, bottom, blurred)],
                         ["crop, focus top", "crop, focus bottom", "pad, blurred fill"]), width=1000)

# %% [markdown]
# ## 4. Loading from a URL
#
# URLs work the same way, with guards a notebook needs: http(s) only, a connect and a total
# timeout, a byte cap enforced while downloading, a content-type check and at most 5 redirects.
# To stay offline, this cell serves the samples folder from a small web server on the loopback
# address, started right here.

# %%
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(sample_path("shapes").parent)))
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/panorama.jpg"
from_url = cogviz.load_image(url)
print(url, "->", from_url.size)
try:
    cogviz.load_image(url.replace("panorama.jpg", "missing.jpg"))
except cogviz.CogvizError as e:
    print("a clear error:", e)

# %% [markdown]
# ## 5. The `ImageFitter` widget
#
# The same two functions behind controls: pick a sample, upload a file or type a path / URL
# (then Enter), choose the preset, the mode, the focus and the fill. The left view outlines what
# the fit keeps; the right one is what the model will see. The current fit is the widget's
# `fitted` trait, so other widgets can chain to it.

# %%
from cogviz.widgets import ImageFitter

fitter = ImageFitter(sample=SAMPLE if SAMPLE in SAMPLES else "lighthouse", preset=PRESET)
fitter

# %%
fitter.mode.value = "pad"   # driving the widget from code works too
print(fitter.fitted.report.summary())

# %% [markdown]
# ## 6. Exercise
#
# The `panorama` sample is 1200 x 360. Fitting it to 480 x 720 in `crop` mode, what percentage of
# its area is cut away? Work it out with the table in section 3, then put your number below.
#
# *Hint:* the cover scale is $\max(720/1200,\ 480/360)$; the kept window is $720/s$ wide.

# %% tags=["answer"]
my_answer = None   # your percentage, e.g. 12.5

# %%
from cogviz.lessons import check

cropped = cogviz.fit_image(sample_path("panorama"), "CogVideoX-5b-I2V", "crop").report.cropped_pct
check({"my_answer": my_answer}, lambda: None if abs(my_answer - cropped) < 0.1 else f"fit_image says {cropped:.2f} %",
      f"{cropped:.1f} % of the panorama is cropped away");
server.shutdown()
