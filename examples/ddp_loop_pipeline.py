"""diffcheck for denoising-diffusion-pytorch objects sampled by your own loop over ``p_sample``.

    diffcheck run results/model-1.pt --pipeline examples/ddp_loop_pipeline.py:build --data spectra.h5

Your training script's objects and your sampling loop, unchanged; the last statement is all
diffcheck needs. (For the library's own ``sample()``, examples/trainer1d_pipeline.py is shorter.)
"""
import copy

import torch

import diffcheck
from diffcheck.pipelines.adapters.ddp import GaussianDiffusion1D, Unet1D


def build(checkpoint):
    model = Unet1D(dim=16, dim_mults=(1, 2, 2), channels=1, attn_heads=2, attn_dim_head=8)
    diffusion = GaussianDiffusion1D(model, seq_length=512, timesteps=1000, objective="pred_noise")
    saved = diffcheck.read_torch_file(checkpoint)  # a Trainer1D checkpoint: online and EMA weights
    diffusion.load_state_dict(saved["model"])
    ema = copy.deepcopy(diffusion)
    ema.load_state_dict({k.removeprefix("ema_model."): v for k, v in saved["ema"].items() if k.startswith("ema_model.")})

    @torch.no_grad()
    def sample(n):  # your loop: from noise to the [-1, 1] space the network works in
        x = torch.randn(n, 1, 512)
        for t in reversed(range(ema.num_timesteps)):
            x, _ = ema.p_sample(x, t)
        return x

    def loss(x0):  # your training step on [-1, 1] data: p_losses at random t
        return diffusion.p_losses(x0, torch.randint(0, diffusion.num_timesteps, (x0.shape[0],)))

    return diffcheck.from_functions(
        network=ema.model, online=diffusion.model, schedule=diffusion, sample=sample, loss=loss,
        loss_at=lambda x0, t, noise: diffusion.p_losses(x0, t, noise=noise, loss_reduction="none"),
        normaliser=diffcheck.Normaliser("global_minmax", lo=0.0012796680675819516, hi=5.082210540771484),
        ema_decay=0.995, steps=saved["step"], name="denoising-diffusion-pytorch, hand-written p_sample loop")
