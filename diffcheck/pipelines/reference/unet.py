"""Reference 1D U-Net denoiser for diffusion models on stellar spectra.

The network follows the usual DDPM layout (Ho et al. 2020) adapted to one
dimension: a stem convolution, ``len(channels)`` resolution levels with
residual blocks, a strided-convolution downsampling step between levels, a
middle block (residual, self-attention, residual), a mirrored upsampling path
(nearest ×2 + convolution) whose levels concatenate the matching skip
connection and, as in DDPM, have one residual block more than the
corresponding downsampling level, and an output head.
Self-attention is used only at the lowest resolution. A sinusoidal embedding
of the timestep followed by an MLP is fed to every residual block.

The default configuration (channels 32/64/128/256, two blocks per level) has
about 5.9 M parameters, the size of the network of the experiment the toolkit
was built around. The network never normalises its input per sample, and its
output convolution keeps PyTorch's default initialisation so that a freshly
built network's output depends on both its input and the timestep.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNetConfig", "UNet1D", "ResBlock1D", "SelfAttention1D", "sinusoidal_embedding"]


def _positive_int(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a positive int (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"UNetConfig.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of :class:`UNet1D`; validated on construction."""

    in_channels: int = 1
    channels: tuple[int, ...] = (32, 64, 128, 256)
    blocks_per_level: int = 2
    time_dim: int | None = None  # None means 4 * channels[0]
    attention_heads: int = 4
    groups: int = 8  # GroupNorm groups; must divide every channel count
    dropout: float = 0.0
    max_period: float = 10000.0  # of the sinusoidal embedding

    def __post_init__(self) -> None:
        if isinstance(self.channels, (str, bytes)) or not hasattr(self.channels, "__iter__"):
            raise ValueError(f"UNetConfig.channels must be a sequence of ints, got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ValueError("UNetConfig.channels must not be empty, got ()")
        for name in ("in_channels", "blocks_per_level", "attention_heads", "groups"):
            _positive_int(name, getattr(self, name))
        for c in self.channels:
            _positive_int("channels", c)
            if c % self.groups:
                raise ValueError(f"UNetConfig.groups={self.groups} does not divide channel count {c} "
                                 f"of channels={self.channels}")
        if self.channels[-1] % self.attention_heads:
            raise ValueError(f"UNetConfig.attention_heads={self.attention_heads} does not divide the "
                             f"lowest-resolution channel count {self.channels[-1]}")
        if self.time_dim is not None:
            _positive_int("time_dim", self.time_dim)
        if self.channels[0] % 2:
            raise ValueError(f"UNetConfig.channels[0] must be even (sinusoidal embedding width), "
                             f"got {self.channels[0]}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UNetConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.max_period, (int, float)) or not self.max_period > 1.0:
            raise ValueError(f"UNetConfig.max_period must be a number > 1, got {self.max_period!r}")

    @property
    def effective_time_dim(self) -> int:
        """Width of the time embedding fed to the residual blocks."""
        return self.time_dim if self.time_dim is not None else 4 * self.channels[0]

    @property
    def length_divisor(self) -> int:
        """The input length must be a multiple of this (2 ** (levels - 1))."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``channels`` as a list)."""
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; raises ValueError naming unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig key(s): {', '.join(map(str, unknown))}")
        return cls(**d)


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal timestep embedding, shape ``[B] -> [B, dim]``.

    The transformer position encoding of Vaswani et al. 2017 ("Attention is
    all you need", sec. 3.5) as used for diffusion timesteps by Ho et al. 2020
    (DDPM): ``[cos(t * f_k), sin(t * f_k)]`` with
    ``f_k = max_period ** (-k / (dim / 2))``, ``k = 0 .. dim/2 - 1``.
    ``t`` is used as given (the reference pipeline passes integer steps
    ``0 .. T-1``); it is cast to float32, never rounded, so ``10.5`` and ``10``
    embed differently.
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal_embedding dim must be even and >= 2, got {dim}")
    if t.dim() != 1:
        raise ValueError(f"t must have shape [B], got {tuple(t.shape)}")
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) / half
    freqs = torch.exp(-math.log(max_period) * exponent)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock1D(nn.Module):
    """GroupNorm-SiLU-Conv, + time projection, GroupNorm-SiLU-Dropout-Conv, residual."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv1d(in_ch, out_ch, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        """``x`` [B, in_ch, L], ``temb`` [B, time_dim] -> [B, out_ch, L]."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(temb))[:, :, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention1D(nn.Module):
    """Multi-head self-attention over the length axis, with GroupNorm and residual."""

    def __init__(self, ch: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj = nn.Conv1d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [B, C, L] -> [B, C, L]."""
        b, c, length = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, length)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # [B, H, L, C/H]
        h = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(h.transpose(-1, -2).reshape(b, c, length))


class _Level(nn.Module):
    """Residual blocks of one resolution level, each optionally followed by attention."""

    def __init__(self, in_ch: int, out_ch: int, cfg: UNetConfig, n_blocks: int, attention: bool):
        super().__init__()
        tdim, g = cfg.effective_time_dim, cfg.groups
        self.blocks = nn.ModuleList(
            ResBlock1D(in_ch if i == 0 else out_ch, out_ch, tdim, g, cfg.dropout) for i in range(n_blocks))
        self.attns = nn.ModuleList(
            SelfAttention1D(out_ch, cfg.attention_heads, g) if attention else nn.Identity()
            for _ in range(n_blocks))

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        for block, attn in zip(self.blocks, self.attns):
            x = attn(block(x, temb))
        return x


class _Upsample(nn.Module):
    """Nearest-neighbour ×2 followed by a k=3 convolution."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet1D(nn.Module):
    """1D U-Net noise predictor ``eps(x_t, t)``; see the module docstring."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise ValueError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = cfg = config
        ch, n, tdim = cfg.channels, cfg.blocks_per_level, cfg.effective_time_dim
        low = len(ch) - 1
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.stem = nn.Conv1d(cfg.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList(
            _Level(ch[max(i - 1, 0)], ch[i], cfg, n, attention=i == low) for i in range(len(ch)))
        self.downsample = nn.ModuleList(nn.Conv1d(c, c, 3, stride=2, padding=1) for c in ch[:-1])
        self.mid1 = ResBlock1D(ch[-1], ch[-1], tdim, cfg.groups, cfg.dropout)
        self.mid_attn = SelfAttention1D(ch[-1], cfg.attention_heads, cfg.groups)
        self.mid2 = ResBlock1D(ch[-1], ch[-1], tdim, cfg.groups, cfg.dropout)
        self.upsample = nn.ModuleList(_Upsample(ch[i + 1], ch[i]) for i in range(low))
        self.up = nn.ModuleList(  # one block more than on the way down, as in DDPM
            _Level(2 * ch[i], ch[i], cfg, n + 1, attention=i == low) for i in range(len(ch)))
        self.out_norm = nn.GroupNorm(cfg.groups, ch[0])
        self.out_conv = nn.Conv1d(ch[0], cfg.in_channels, 3, padding=1)  # default init, not zeroed

    def _check_input(self, x: Tensor, t: Tensor) -> None:
        """Raise ValueError on shapes the network cannot process."""
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must have shape [B, {cfg.in_channels}, L], got {tuple(x.shape)}")
        if x.shape[-1] % cfg.length_divisor:
            raise ValueError(f"input length {x.shape[-1]} is not divisible by {cfg.length_divisor} "
                             f"(2**(levels-1) for {len(cfg.channels)} levels)")
        if t.dim() != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t must have shape [{x.shape[0]}], got {tuple(t.shape)}")

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """``x`` [B, C, L], ``t`` [B] (any numeric dtype) -> prediction [B, C, L]."""
        self._check_input(x, t)
        cfg = self.config
        emb = sinusoidal_embedding(t.to(x.device), cfg.channels[0], cfg.max_period).to(x.dtype)
        temb = self.time_mlp(emb)
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):
                h = self.upsample[i](h)
            h = self.up[i](torch.cat([h, skips[i]], dim=1), temb)
        return self.out_conv(F.silu(self.out_norm(h)))
