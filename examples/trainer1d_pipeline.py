"""diffcheck for a denoising-diffusion-pytorch Trainer1D checkpoint: copy this file, edit two places.

    diffcheck run results/model-1.pt --pipeline trainer1d_pipeline.py:build --data spectra.h5
"""
from diffcheck import Normaliser
from diffcheck.pipelines.adapters.ddp import GaussianDiffusion1D, Unet1D, from_trainer1d


def make_diffusion():
    """1. Your training script's Unet1D and GaussianDiffusion1D, with the same arguments."""
    model = Unet1D(dim=16, dim_mults=(1, 2, 2), channels=1, attn_heads=2, attn_dim_head=8)
    return GaussianDiffusion1D(model, seq_length=512, timesteps=1000, sampling_timesteps=100, ddim_sampling_eta=1.0,
                               objective="pred_noise")


def build(checkpoint):
    """2. How flux became the [0, 1] data you gave Trainer1D: (flux - lo) / (hi - lo)."""
    scaling = Normaliser("global_minmax", lo=0.0012796680675819516, hi=5.082210540771484)
    return from_trainer1d(checkpoint, make_diffusion, normaliser=scaling, ema_decay=0.995)
