"""The reference pipeline: UNet1D + GaussianDiffusion behind the :class:`~diffcheck.Pipeline` protocol."""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping

import torch
from torch import nn

from diffcheck.errors import InputError
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.pipeline import Pipeline, StepCallback, WeightsInfo
from diffcheck.pipelines.schedule import Schedule
from diffcheck.text import first_line, plain
from diffcheck.pipelines.reference.checkpoint import read_checkpoint, save_checkpoint, validate_checkpoint
from diffcheck.pipelines.reference.ddpm import DiffusionConfig, GaussianDiffusion
from diffcheck.pipelines.reference.unet import UNet1D, UNetConfig

__all__ = ["ReferencePipeline"]


class ReferencePipeline(Pipeline):
    """diffcheck's known-good DDPM. Samples with the EMA weights when the checkpoint has them."""

    name = "diffcheck reference UNet1D DDPM"

    def __init__(
        self,
        unet_config: UNetConfig,
        diffusion: GaussianDiffusion,
        *,
        length: int,
        normaliser: Normaliser | None = None,
        online: nn.Module | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.unet_config = unet_config
        self.diffusion = diffusion
        self.length = length
        self._normaliser = normaliser or Normaliser()
        self.online = online if online is not None else diffusion.model
        self.meta = dict(meta or {})
        #: What the checkpoint file holds for the sampled network (set by from_checkpoint; None when
        #: the pipeline was built in code).
        self.stored_state: Mapping[str, torch.Tensor] | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        unet_config: UNetConfig,
        diffusion_config: DiffusionConfig,
        *,
        length: int,
        normaliser: Normaliser | None = None,
        seed: int = 0,
        diffusion_cls: type[GaussianDiffusion] = GaussianDiffusion,
    ) -> "ReferencePipeline":
        """A freshly initialised pipeline (online network and an EMA copy of it)."""
        torch.manual_seed(seed)
        online = UNet1D(unet_config)
        ema = copy.deepcopy(online)
        return cls(unet_config, diffusion_cls(ema, diffusion_config), length=length,
                   normaliser=normaliser, online=online, meta={"step": 0})

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, *, weights: str = "ema",
        diffusion_cls: type[GaussianDiffusion] = GaussianDiffusion, trust: bool | None = None,
    ) -> "ReferencePipeline":
        """Load a reference checkpoint; ``weights`` picks "ema" (falls back to online) or "online".

        ``trust`` None takes the value of :func:`~diffcheck.pipelines.loading.trusted_checkpoints`.
        """
        return cls.from_payload(read_checkpoint(path, trust=trust), path, weights=weights, diffusion_cls=diffusion_cls)

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, Any], path: str | os.PathLike, *, weights: str = "ema",
        diffusion_cls: type[GaussianDiffusion] = GaussianDiffusion,
    ) -> "ReferencePipeline":
        """The pipeline of a checkpoint already read from ``path`` (validated here): no second load."""
        ckpt = validate_checkpoint(payload, path)
        try:
            unet_config = UNetConfig.from_dict(ckpt["model"]["config"])
            diffusion_config = DiffusionConfig.from_dict(ckpt["diffusion"])
            normaliser = Normaliser.from_dict(ckpt["data"].get("normalisation", {}))
            length = int(ckpt["data"]["length"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"checkpoint {path} has an invalid config: {_exc_line(exc)}") from None
        online = _load_net(unet_config, ckpt["state_dict"], path, "state_dict")
        ema_sd = ckpt.get("ema_state_dict")
        use_ema = weights == "ema" and ema_sd is not None
        net = _load_net(unet_config, ema_sd, path, "ema_state_dict") if use_ema else online
        meta = {"step": _int(ckpt.get("step", 0)), "ema_decay": ckpt.get("ema_decay"),
                "weights": "ema" if use_ema else "online", "path": str(path),
                "data_source": plain(ckpt["data"].get("source", ""))}
        pipe = cls(unet_config, diffusion_cls(net, diffusion_config), length=length,
                   normaliser=normaliser, online=online, meta=meta)
        pipe.stored_state = ema_sd if use_ema else ckpt["state_dict"]
        return pipe

    def save(self, path: str | os.PathLike, *, step: int, ema_decay: float, data_source: str = "") -> None:
        save_checkpoint(path, {
            "model": {"class": "UNet1D", "config": self.unet_config.to_dict()},
            "diffusion": self.diffusion.config.to_dict(),
            "data": {"channels": self.unet_config.in_channels, "length": self.length,
                     "normalisation": self._normaliser.to_dict(), "source": data_source},
            "state_dict": self.online.state_dict(),
            "ema_state_dict": self.diffusion.model.state_dict(),
            "ema_decay": ema_decay,
            "step": step,
        })

    # -- the protocol ----------------------------------------------------------------------------
    @property
    def network(self) -> nn.Module:
        return self.diffusion.model

    @property
    def schedule(self) -> Schedule:
        return self.diffusion.schedule

    @property
    def sample_shape(self) -> tuple[int, int]:
        return (self.unet_config.in_channels, self.length)

    @property
    def normaliser(self) -> Normaliser:
        return self._normaliser

    @property
    def device(self) -> torch.device:
        return next(self.online.parameters()).device

    def to(self, device: torch.device | str) -> "ReferencePipeline":
        self.diffusion.model.to(device)
        self.online.to(device)
        return self

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.diffusion.q_sample(x0, t, noise)

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.diffusion.loss(x0, generator)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> torch.Tensor:
        self.network.eval()
        return self.diffusion.sample((n, *self.sample_shape), generator=generator,
                                     device=self.device, callback=callback)

    def _set_network(self, network: nn.Module) -> None:
        self.diffusion.model = network

    def make_network(self) -> nn.Module:
        return UNet1D(self.unet_config).to(self.device)

    def training_loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.diffusion.loss_at(x0, t, noise)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.diffusion.predict(x_t, t)[0]

    def weights_info(self) -> WeightsInfo:
        """Checkpoints load strictly (a mismatch is an InputError), so the load report is empty; a
        pipeline read from a file also hands over the tensors the file holds for its sampled network."""
        ema = self.online is not self.network
        return WeightsInfo(online=self.online if ema else None, ema_decay=self.meta.get("ema_decay") if ema else None,
                           steps=self.meta.get("step"), missing_keys=(), unexpected_keys=(),
                           stored_state=self.stored_state)

    def describe(self) -> dict[str, Any]:
        cfg = self.diffusion.config
        return {**super().describe(), "objective": cfg.objective, "sampler": cfg.sampler,
                "parameters": sum(p.numel() for p in self.network.parameters()),
                "normalisation": self._normaliser.kind, **self.meta}


def _load_net(config: UNetConfig, state_dict: Any, path: Any, key: str) -> nn.Module:
    try:
        net = UNet1D(config)
        net.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, AttributeError, ValueError, KeyError) as exc:
        lines = [line.strip() for line in plain(exc).splitlines() if line.strip()]
        raise InputError(f"checkpoint {path}: {key} does not match its model config "
                         f"({' '.join(lines[:2])[:200] or type(exc).__name__})") from None
    return net.eval()


def _exc_line(exc: BaseException) -> str:
    return first_line(exc, 200) or type(exc).__name__


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
