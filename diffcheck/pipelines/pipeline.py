"""The pipeline protocol: the one seam between diffcheck and a diffusion pipeline.

Checks only ever talk to a :class:`Pipeline`. Through it they get the network the sampler
calls, the declared training schedule, the pipeline's *own* forward process, training loss and
sampler, its data normalisation, and a way to substitute the network that the loss and the
sampler call (oracle checks replace it by an exact denoiser). Adapters for other libraries and
a user's own DDPM implement the same class; no check changes when a new adapter arrives.

Optional capabilities (:data:`CAPABILITIES`): ``training_loss`` (every pipeline has the method;
diffusers' does not train, so its adapter declares it unavailable), ``training_loss_at(x0, t,
noise)``, the training loss per sample at given timesteps (TEMB, LOSS and TOY; without it TEMB
and LOSS fall back to the sampler's decoded parameterisation as the target), ``denoise(x_t, t)``,
the x0 the sampler decodes from the network at a timestep (TOY), and ``make_network()``, a fresh
network of the same architecture (TOY, WGT003). There is one way to say one is not available:
:meth:`Pipeline.unavailable` returns the reason (by default: the class does not override the
method), a check that needs it SKIPs with that reason (:meth:`Pipeline.require`), and so does a
call of the method where it is not available.
``weights_info()`` says what is known of the weights: the online network next to an EMA one,
the EMA decay, the steps trained, the strict-load report and any schedule buffers stored with the
weights (WGT); a field it leaves None is not known.

The sampler reports each step to its ``callback`` as a :class:`Step`.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.schedule import Schedule

__all__ = ["CAPABILITIES", "Pipeline", "Step", "StepCallback", "WeightsInfo"]


@dataclass(frozen=True, eq=False)
class Step:
    """One network call of a sampler, as :meth:`Pipeline.sample` reports it to its callback.

    Also readable as a mapping (``step["t"]``, ``step.get("x0_hat")``), as the dict records of
    earlier versions were; a callback may be given either.
    """

    #: The step's index, 0 for the first network call.
    i: int
    #: The schedule index (0..T-1) of the step (a float where the sampler's time is not on the grid).
    t: int | float
    #: The sampler's state the network is called on.
    x_t: torch.Tensor
    #: The x0 the sampler decoded at this step, where it reports one.
    x0_hat: torch.Tensor | None = None
    #: The network's raw output, where reported.
    out: torch.Tensor | None = None
    #: The state after the step, where reported.
    x_next: torch.Tensor | None = None
    #: The time value the network was given, where it differs from ``t`` (e.g. ``t / T``).
    t_network: Any = None

    def __getitem__(self, key: str) -> Any:
        if key not in _STEP_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in _STEP_FIELDS else None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return key in _STEP_FIELDS and getattr(self, str(key)) is not None


_STEP_FIELDS = frozenset(("i", "t", "x_t", "x0_hat", "out", "x_next", "t_network"))

#: Called by :meth:`Pipeline.sample` after each network call with its :class:`Step`.
StepCallback = Callable[[Step], None]

#: The optional capabilities of a pipeline, by method name, and what each one is.
CAPABILITIES: Mapping[str, str] = {
    "training_loss": "its own training loss (Pipeline.training_loss)",
    "training_loss_at": "its training loss at given timesteps (Pipeline.training_loss_at)",
    "denoise": "its sampler's decoding (Pipeline.denoise)",
    "make_network": "a fresh network of the same architecture (Pipeline.make_network)",
}


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
        """The pipeline's own training loss on a batch of normalised ``x0`` (a scalar tensor). A pipeline
        without one (a sampling-only library) says so in :meth:`unavailable`."""

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
        """Optional: a freshly initialised network of the same architecture (for toy trainings)."""
        self.require("make_network")
        raise NotImplementedError("make_network")

    def training_loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Optional: the training loss per sample [B] for normalised ``x0``, schedule indices ``t`` [B]
        and ``noise``, exactly as :meth:`training_loss` computes it before averaging over t."""
        self.require("training_loss_at")
        raise NotImplementedError("training_loss_at")

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Optional: the x0 the sampler decodes from the network's output at schedule indices ``t`` [B]
        (its own parameterisation conversion and clipping), without the rest of the step."""
        self.require("denoise")
        raise NotImplementedError("denoise")

    def weights_info(self) -> WeightsInfo:
        """Optional: what the pipeline knows of its weights (online/EMA, decay, steps, load report)."""
        return WeightsInfo()

    def state_modules(self) -> tuple[nn.Module, ...]:
        """The modules whose state the runner saves before each check and restores after it (the
        train/eval mode of every submodule, ``requires_grad`` of every parameter), so that what a
        check sees does not depend on what ran before it: the sampled network and the online one."""
        online = self.weights_info().online
        return tuple(dict.fromkeys(m for m in (self.network, online) if isinstance(m, nn.Module)))

    def unavailable(self, capability: str) -> str | None:
        """Why the optional ``capability`` (a key of :data:`CAPABILITIES`) is not available, as the
        reason a check that needs it SKIPs with; None where it is. By default a capability is
        available where the class overrides its method; override this to say more (an adapter whose
        library has no training loss, a network without a config to build a fresh one from)."""
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        base = getattr(Pipeline, capability)
        if getattr(base, "__isabstractmethod__", False) or getattr(type(self), capability) is not base:
            return None
        return f"the pipeline does not provide {CAPABILITIES[capability]}"

    def provides(self, capability: str) -> bool:
        """Whether the optional ``capability`` is available (:meth:`unavailable` gives no reason)."""
        return self.unavailable(capability) is None

    def require(self, *capabilities: str) -> None:
        """Raise :class:`~diffcheck.errors.Skip` with the reason of the first of ``capabilities`` that is
        not available: what a fixture or check calls before it uses one."""
        from diffcheck.errors import Skip

        for capability in capabilities:
            reason = self.unavailable(capability)
            if reason is not None:
                raise Skip(reason)

    def describe(self) -> dict[str, Any]:
        """What the report shows about the pipeline: plain JSON values."""
        return {"name": self.name, "T": self.schedule.T, "schedule": self.schedule.name,
                "sample_shape": list(self.sample_shape)}
