"""What sdedit.py and latent_vs_truth.py share: a model, a held-out scene's true latents, and DDIM
denoising with classifier-free guidance from pure noise or from the true latent noised to t0."""
import numpy as np
import torch
from diffusers import CogVideoXDDIMScheduler

import cogviz
from cogviz.toy.scenes import prompt_for, render_scene, sample_scene
from cogviz.toy.train import EVAL_SEED_BASE, to_pixels

torch.set_num_threads(1)


class Probe:
    def __init__(self, model: str):
        self.pipe = cogviz.load_pipeline(model, device="cpu")
        self.vae, self.tr = self.pipe.vae, self.pipe.transformer
        self.sch = CogVideoXDDIMScheduler.from_config(self.pipe.scheduler.config)
        self.sf = self.vae.config.scaling_factor
        self.rot = self.pipe._prepare_rotary_positional_embeddings(64, 96, 5, "cpu")

    @torch.no_grad()
    def scene(self, k: int):
        """Held-out scene k: (scene, frames, true video latent, image latent zero-padded, CFG embeddings)."""
        return self.encode(sample_scene(EVAL_SEED_BASE + k))

    @torch.no_grad()
    def encode(self, sc):
        """A scene's (scene, frames, true video latent, image latent zero-padded, CFG embeddings)."""
        fr = render_scene(sc); x = to_pixels(fr[None])
        x0 = self.vae.encode(x).latent_dist.mean.permute(0, 2, 1, 3, 4) * self.sf
        zi = self.vae.encode(x[:, :, :1]).latent_dist.mean.permute(0, 2, 1, 3, 4) * self.sf
        zi = torch.cat([zi, torch.zeros_like(x0[:, 1:])], 1)
        emb = self.pipe.encode_prompt([prompt_for(sc)], negative_prompt=[""], do_classifier_free_guidance=True,
                                      max_sequence_length=16, device="cpu")
        return sc, fr, x0, zi, torch.cat([emb[1], emb[0]])

    @torch.no_grad()
    def denoise(self, x0, zi, pe, t0: int, guidance: float, steps: int = 50, seed: int = 0):
        """50 DDIM steps below t0 (t0 = 1000: from pure noise), noise seed ``seed``; the final latent."""
        self.sch.set_timesteps(steps)
        ts = [t for t in self.sch.timesteps if t < t0]
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        z = self.sch.add_noise(x0, noise, torch.tensor([ts[0]])) if t0 < 1000 else noise
        for t in ts:
            v = self.tr(hidden_states=torch.cat([torch.cat([z, zi], 2)] * 2), encoder_hidden_states=pe,
                        timestep=torch.tensor([t, t]), image_rotary_emb=self.rot, return_dict=False)[0]
            vu, vc = v.chunk(2)
            z = self.sch.step(vu + guidance * (vc - vu), t, z).prev_sample
        return z

    @torch.no_grad()
    def strip(self, z) -> np.ndarray:
        """Frames 0, 4, 8, 12, 16 of the decoded latent, side by side."""
        y = self.vae.decode(z.permute(0, 2, 1, 3, 4) / self.sf).sample
        y = ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
        return np.concatenate([y[i] for i in [0, 4, 8, 12, 16]], 1)
