"""diffcheck for a home-made DDPM: a complete ``--pipeline`` file.

    diffcheck preflight --pipeline examples/homemade_pipeline.py:build          # fresh weights, before training
    diffcheck run my_ckpt.pt --pipeline examples/homemade_pipeline.py:build --data spectra.h5

The first half stands in for your repository (``models/diffusion/unet_1d.py`` and ``ddpm.py``):
a small 1D U-Net and a DDPM with a loss and an ancestral sampler, written as such repositories
write them: the sampler draws its own noise and takes no callback. In your file you import those
instead. The second half is all diffcheck needs: ``build(checkpoint)`` loads your checkpoint the
way your code does and hands diffcheck your network, your functions and your schedule
(:func:`diffcheck.from_functions`); nothing in your code changes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import diffcheck

# ---- stands in for models/diffusion/unet_1d.py ------------------------------------------------------


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of the integer timestep, then an MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.SiLU(), nn.Linear(dim * 2, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([args.sin(), args.cos()], dim=1))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(c_in, c_out, 3, padding=1), nn.Conv1d(c_out, c_out, 3, padding=1)
        self.norm1, self.norm2 = nn.GroupNorm(4, c_out), nn.GroupNorm(4, c_out)
        self.time = nn.Linear(t_dim, c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x))) + self.time(temb)[:, :, None]
        return F.silu(self.norm2(self.conv2(h))) + self.skip(x)


class UNet1D(nn.Module):
    """Two levels down, two up, skip connections; ``forward(x, t)`` with integer t."""

    def __init__(self, channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.config = {"channels": channels, "width": width}
        self.temb = TimeEmbedding(width)
        self.inc = nn.Conv1d(channels, width, 3, padding=1)
        self.down1, self.down2 = ResBlock(width, width, width), ResBlock(width, 2 * width, width)
        self.mid = ResBlock(2 * width, 2 * width, width)
        self.up2, self.up1 = ResBlock(4 * width, width, width), ResBlock(2 * width, width, width)
        self.out = nn.Conv1d(width, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(t.expand(x.shape[0]) if t.dim() == 0 else t)
        h1 = self.down1(self.inc(x), temb)
        h2 = self.down2(F.avg_pool1d(h1, 2), temb)
        h = self.mid(F.avg_pool1d(h2, 2), temb)
        h = self.up2(torch.cat([F.interpolate(h, scale_factor=2.0), h2], dim=1), temb)
        h = self.up1(torch.cat([F.interpolate(h, scale_factor=2.0), h1], dim=1), temb)
        return self.out(h)


# ---- stands in for models/diffusion/ddpm.py ---------------------------------------------------------


class DDPM(nn.Module):
    """Ho et al. (2020): linear betas, eps objective, ancestral sampling with x0 clipping."""

    def __init__(self, model: nn.Module, length: int, T: int = 1000) -> None:
        super().__init__()
        self.model, self.length, self.T = model, length, T
        betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - betas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        for name, value in {"betas": betas, "alpha_bar": alpha_bar,
                            "post_var": betas * (1 - alpha_bar_prev) / (1 - alpha_bar),
                            "post_c0": betas * alpha_bar_prev.sqrt() / (1 - alpha_bar),
                            "post_ct": (1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar)}.items():
            self.register_buffer(name, value.float())

    def _at(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)[t].view(-1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ab = self._at("alpha_bar", t)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.model(self.q_sample(x0, t, noise), t), noise)

    def train_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """The training step's loss: random timesteps and noise."""
        t = torch.randint(0, self.T, (x0.shape[0],), device=x0.device)
        return self.loss(x0, t, torch.randn_like(x0))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        self.model.eval()
        device = self.betas.device
        x = torch.randn((n, 1, self.length), device=device)
        for step in reversed(range(self.T)):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            ab = self._at("alpha_bar", t)
            x0_hat = ((x - (1 - ab).sqrt() * self.model(x, t)) / ab.sqrt()).clamp(-1, 1)
            mean = self._at("post_c0", t) * x0_hat + self._at("post_ct", t) * x
            noise = torch.randn_like(x) if step > 0 else 0.0
            x = mean + self._at("post_var", t).sqrt() * noise
        return x


def save(ddpm: DDPM, normaliser: diffcheck.Normaliser, path: str) -> None:
    """How this repository saves a checkpoint: weights and the few numbers needed to rebuild it."""
    torch.save({"model": ddpm.model.state_dict(), "unet": ddpm.model.config, "length": ddpm.length,
                "normalisation": normaliser.to_dict()}, path)


def load(checkpoint: str | None) -> tuple[DDPM, diffcheck.Normaliser]:
    """The checkpoint loaded (weights-only unless --trust-checkpoint), or fresh weights for a preflight."""
    if checkpoint is None:
        torch.manual_seed(0)
        return DDPM(UNet1D(), length=512), diffcheck.Normaliser()
    ckpt = diffcheck.read_torch_file(checkpoint)
    net = UNet1D(**ckpt["unet"])
    net.load_state_dict(ckpt["model"])
    return DDPM(net.eval(), length=ckpt["length"]), diffcheck.Normaliser.from_dict(ckpt["normalisation"])


# ---- what diffcheck needs ----------------------------------------------------------------------------


def pipeline(ddpm: DDPM, normaliser: diffcheck.Normaliser) -> diffcheck.Pipeline:
    """Your network, functions and schedule, as they are."""
    return diffcheck.from_functions(
        network=ddpm.model, schedule=ddpm, sample=ddpm.sample, loss=ddpm.train_loss, loss_at=ddpm.loss,
        normaliser=normaliser, make_network=lambda: UNet1D(**ddpm.model.config),
        name="home-made DDPM (examples/homemade_pipeline.py)")


def build(checkpoint: str | None) -> diffcheck.Pipeline:
    """``--pipeline homemade_pipeline.py:build``."""
    return pipeline(*load(checkpoint))
