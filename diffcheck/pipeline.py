"""The pipeline protocol: the one seam between diffcheck and a diffusion pipeline.

Checks only ever talk to a :class:`Pipeline`. Through it they get the network the sampler
calls, the declared training schedule, the pipeline's *own* forward process, training loss and
sampler, its data normalisation, and a way to substitute the network that the loss and the
sampler call (oracle checks replace it by an exact denoiser). Adapters for other libraries and
a user's own DDPM implement the same class; no check changes when a new adapter arrives.

Optional methods (the defaults say "not available", and the checks that need them SKIP with
the reason): ``training_loss_at(x0, t, noise)``, the training loss per sample at given
timesteps (TEMB, LOSS and TOY; without it TEMB and LOSS fall back to the sampler's decoded
parameterisation as the target); ``denoise(x_t, t)``, the x0 the sampler decodes from the network
at a timestep (TOY); ``weights_info()``, what is known of the weights: the online network next
to an EMA one, the EMA decay, the steps trained, the strict-load report and any schedule buffers
stored with the weights (WGT).
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from .normalise import Normaliser
from .schedule import Schedule

__all__ = ["Pipeline", "StepCallback", "WeightsInfo"]

#: Called by :meth:`Pipeline.sample` after each step with a dict holding at least
#: ``i`` (step index), ``t`` (the timestep passed to the network) and ``x_t``.
StepCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, eq=False)
class WeightsInfo:
    """Where a pipeline's weights came from, as far as it knows (``None``: not known)."""

    #: The online (raw training) network when :attr:`Pipeline.network` is an EMA copy of it.
    online: nn.Module | None = None
    ema_decay: float | None = None
    #: Optimiser steps the weights were trained for.
    steps: int | None = None
    #: The load report: keys the model expected and the file lacked, and keys it did not use.
    #: ``None`` when the pipeline does not report its load (a strict load reports two empty tuples).
    missing_keys: tuple[str, ...] | None = None
    unexpected_keys: tuple[str, ...] | None = None
    #: Schedule tensors stored with the weights (e.g. ``betas``, ``alphas_cumprod``), by name.
    schedule_buffers: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: The tensors the file holds for the sampled network, keyed as its ``state_dict()`` (``None``:
    #: not known). WGT002 compares the network the sampler calls with them, key by key and value by value.
    stored_state: Mapping[str, torch.Tensor] | None = None


class Pipeline(abc.ABC):
    """A diffusion pipeline as diffcheck sees it. Tensors are [batch, channels, length]."""

    #: Short human-readable description, shown in reports.
    name: str = "pipeline"

    @property
    @abc.abstractmethod
    def network(self) -> nn.Module:
        """The network the sampler calls (the EMA weights where the pipeline keeps them)."""

    @property
    @abc.abstractmethod
    def schedule(self) -> Schedule:
        """The training schedule the pipeline declares."""

    @property
    @abc.abstractmethod
    def sample_shape(self) -> tuple[int, int]:
        """(channels, length) of one sample."""

    @property
    def normaliser(self) -> Normaliser:
        """How flux maps into the network's space; identity unless the pipeline says otherwise."""
        return Normaliser()

    @property
    def device(self) -> torch.device:
        """Where the pipeline computes: its network's parameters (or buffers), else the CPU."""
        for tensor in (*self.network.parameters(), *self.network.buffers()):
            return tensor.device
        return torch.device("cpu")

    @abc.abstractmethod
    def to(self, device: torch.device | str) -> "Pipeline":
        """Move everything the pipeline computes with to ``device``; returns self."""

    @abc.abstractmethod
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The pipeline's own forward process: x_t for clean ``x0``, integer timesteps ``t`` [B] and ``noise``."""

    @abc.abstractmethod
    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The pipeline's own training loss on a batch of normalised ``x0`` (a scalar tensor)."""

    @abc.abstractmethod
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, callback: StepCallback | None = None
    ) -> torch.Tensor:
        """``n`` samples from the pipeline's own sampler, in the network's (normalised) space."""

    @abc.abstractmethod
    def _set_network(self, network: nn.Module) -> None:
        """Make the loss and the sampler call ``network``."""

    @contextlib.contextmanager
    def network_replaced(self, network: nn.Module) -> Iterator[None]:
        """Within the block, the training loss and the sampler call ``network`` instead."""
        original = self.network
        self._set_network(network)
        try:
            yield
        finally:
            self._set_network(original)

    def to_flux(self, x: np.ndarray) -> np.ndarray:
        """The pipeline's own way from the network's space back to physical flux, for samples
        ``x`` [n, length] (its de-normalisation). The default inverts :attr:`normaliser`; override it
        where the pipeline de-normalises its output otherwise. Sample-quality checks (DIST) compare
        the result with the real spectra in the units of the data file."""
        return self.normaliser.denormalise(x)

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        """The time value the pipeline's loss passes its network for schedule indices ``t``.

        Identity (integer indices 0..T-1) unless the pipeline trains with another convention,
        e.g. ``t.float() / T``. Probes of the network's learned behaviour call it this way.
        """
        return t

    def make_network(self) -> nn.Module:
        """A freshly initialised network of the same architecture (for toy trainings)."""
        raise NotImplementedError(f"{type(self).__name__} cannot build a fresh network")

    def training_loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Optional: the training loss per sample [B] for normalised ``x0``, schedule indices ``t`` [B]
        and ``noise``, exactly as :meth:`training_loss` computes it before averaging over t."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its training loss at given timesteps "
                                  "(Pipeline.training_loss_at)")

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Optional: the x0 the sampler decodes from the network's output at schedule indices ``t`` [B]
        (its own parameterisation conversion and clipping), without the rest of the step."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its sampler's decoding (Pipeline.denoise)")

    def weights_info(self) -> WeightsInfo:
        """Optional: what the pipeline knows of its weights (online/EMA, decay, steps, load report)."""
        return WeightsInfo()

    def state_modules(self) -> tuple[nn.Module, ...]:
        """The modules whose state the runner saves before each check and restores after it (the
        train/eval mode of every submodule, ``requires_grad`` of every parameter), so that what a
        check sees does not depend on what ran before it: the sampled network and the online one."""
        online = self.weights_info().online
        return tuple(dict.fromkeys(m for m in (self.network, online) if isinstance(m, nn.Module)))

    def provides(self, method: str) -> bool:
        """Whether the optional ``method`` (``training_loss_at``, ``denoise``) is available: by default,
        whether the class overrides it; a pipeline built from functions says what it was given."""
        return getattr(type(self), method) is not getattr(Pipeline, method)

    def describe(self) -> dict[str, Any]:
        """What the report shows about the pipeline: plain JSON values."""
        return {"name": self.name, "T": self.schedule.T, "schedule": self.schedule.name,
                "sample_shape": list(self.sample_shape)}
