"""diffcheck for a diffusers UNet1DModel and scheduler sampled by your own loop, returning flux.

    diffcheck run path/to/saved_pipeline --pipeline examples/diffusers_loop_pipeline.py:build --data spectra.h5

Your objects and loops, unchanged: the sampler closes over the EMA network, steps the scheduler and
de-normalises to physical flux; the last statement is all diffcheck needs.
"""
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet1DModel

import diffcheck

LO, HI = 0.0012796680675819516, 5.082210540771484  # how flux was min-max scaled to [-1, 1] for training


def build(folder):
    ema_unet = UNet1DModel.from_pretrained(f"{folder}/unet").eval()  # the EMA weights you saved
    scheduler = DDPMScheduler.from_pretrained(f"{folder}/scheduler")

    @torch.no_grad()
    def sample(n):  # your sampling script: noise -> scheduler loop -> physical flux
        x = torch.randn(n, 1, 512)
        scheduler.set_timesteps(1000)
        for t in scheduler.timesteps:
            x = scheduler.step(ema_unet(x, t).sample, t, x).prev_sample
        return (x + 1) / 2 * (HI - LO) + LO

    def loss(x0):  # your training step (on [-1, 1] data)
        noise, t = torch.randn_like(x0), torch.randint(0, 1000, (x0.shape[0],))
        return F.mse_loss(ema_unet(scheduler.add_noise(x0, noise, t), t).sample, noise)

    return diffcheck.from_functions(network=ema_unet, schedule=scheduler, sample=sample, loss=loss, returns="flux",
                                    normaliser=diffcheck.Normaliser("global_minmax", lo=LO, hi=HI),
                                    name="diffusers UNet1DModel, hand-written scheduler loop")
