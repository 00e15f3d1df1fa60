"""The function route: a :class:`~diffcheck.Pipeline` from the functions a user already has.

A training repository rarely has a class diffcheck could call. It has a network (and its EMA
copy), a ``loss(x0)`` that draws its own t and noise, a ``sample(n)`` loop that closes over the
EMA network and draws its own noise, and a schedule. :func:`from_functions` takes those as they
are and does the plumbing every adapter would otherwise repeat:

- **network substitution**: the oracle checks replace the network the loss and the sampler call.
  The functions close over module objects, so diffcheck reaches those modules themselves: while
  one of the user's functions runs, each given module's ``forward`` is routed through one seam
  that calls the substitute instead (and wraps its tensor in the output type the real network
  returns, e.g. diffusers' ``UNet1DOutput``), then restored;
- **sampler trace**: the per-step callback diffcheck's sampler checks read is built from the
  network calls of ``sample`` (t and x_t at each call), so a sampler needs no callback argument;
- **seeding**: each call of a user function runs under a forked RNG (torch, numpy, random) seeded
  from diffcheck's generator: runs are reproducible and the user's global RNG state is left as
  it was;
- **library objects**: the schedule is read from a diffusers scheduler, a
  denoising-diffusion-pytorch ``GaussianDiffusion1D`` or a home-made DDPM object (their betas;
  their ``add_noise`` / ``q_sample`` as the forward process) as well as from plain betas;
- **units**: a sampler that returns physical flux (``returns="flux"``) is mapped back to the
  network's space with the normaliser, and the DIST checks compare its flux as it was returned.

Only the network and the sampler are required; what is not given makes the checks that need it
SKIP with the reason (the loss: PAR001, SMP004, TEMB005, TOY001; ``loss_at``: TOY001, and TEMB/LOSS
fall back to the sampler's decoding; ``denoise``: TOY001; the sampler's x0 clipping is not in the
trace: SMP006).
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from diffcheck.errors import InputError
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.measure.oracles import _output_tensor, row_of, rows_done, timestep_index
from diffcheck.pipelines.pipeline import CAPABILITIES, Pipeline, Step, StepCallback, WeightsInfo
from diffcheck.pipelines.schedule import Schedule, make_schedule

__all__ = ["FunctionPipeline", "from_functions", "read_schedule"]

_X_NAMES = ("sample", "x", "x_t", "input", "inp", "img")
_T_NAMES = ("timestep", "timesteps", "t", "time", "times")


def from_functions(
    *, network: nn.Module, sample: Callable[[int], Any], schedule: Any, length: int | None = None,
    channels: int | None = None, loss: Callable[[torch.Tensor], Any] | None = None,
    loss_at: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any] | None = None,
    online: nn.Module | None = None, q_sample: Callable[..., torch.Tensor] | None = None,
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, returns: str = "network",
    normaliser: Normaliser | None = None, model_time: Callable[[torch.Tensor], torch.Tensor] | None = None,
    make_network: Callable[[], nn.Module] | None = None, ema_decay: float | None = None, steps: int | None = None,
    name: str = "user functions",
) -> "FunctionPipeline":
    """A pipeline from the user's own objects and functions, none of them changed.

    ``network`` is the module the sampler calls (the EMA copy where there is one), ``online`` the
    one the loss trains (default: the same). ``sample(n)`` returns n samples ([n, L] or [n, C, L];
    in the network's space, or physical flux with ``returns="flux"``). ``schedule``: betas (array
    or tensor), a mapping with ``betas`` or ``alphas_cumprod``, a :class:`~diffcheck.Schedule`, a
    diffusers scheduler (its ``add_noise`` is the forward process) or an object with ``betas`` and
    ``q_sample(x0, t, noise)`` (a ``GaussianDiffusion1D``, or your own DDPM class); an
    ``nn.Module`` schedule object moves to the device with the networks. ``loss(x0)`` is the training loss on a batch
    of normalised spectra (drawing its own t and noise); ``loss_at(x0, t, noise)`` the same at given
    timesteps and noise (per sample or a mean); ``q_sample(x0, t, noise)`` the forward process when
    the schedule object does not provide it; ``denoise(x_t, t)`` the sampler's x0. ``length`` and
    ``channels`` default to what the network's or the library's config says.
    """
    return FunctionPipeline(
        network=network, sample=sample, schedule=schedule, length=length, channels=channels, loss=loss,
        loss_at=loss_at, online=online, q_sample=q_sample, denoise=denoise, returns=returns, normaliser=normaliser,
        model_time=model_time, make_network=make_network, ema_decay=ema_decay, steps=steps, name=name)


def read_schedule(schedule: Any) -> tuple[Schedule, Callable[..., torch.Tensor] | None, str]:
    """The training schedule, the forward process the object itself provides (or None), and where
    both came from."""
    if isinstance(schedule, Schedule):
        return schedule, None, "a diffcheck Schedule"
    if isinstance(schedule, (np.ndarray, torch.Tensor, list, tuple)):
        return _from_betas(schedule), None, "betas"
    if isinstance(schedule, Mapping):
        if "betas" in schedule:
            return _from_betas(schedule["betas"]), None, "betas"
        if "alphas_cumprod" in schedule:
            return _from_alpha_bar(schedule["alphas_cumprod"]), None, "alphas_cumprod"
        raise InputError("schedule mapping needs 'betas' or 'alphas_cumprod'")
    kind = type(schedule).__name__
    if hasattr(schedule, "add_noise") and hasattr(schedule, "betas"):  # a diffusers scheduler
        return _from_betas(schedule.betas), lambda x0, t, noise: schedule.add_noise(x0, noise, t), kind
    if hasattr(schedule, "q_sample") and hasattr(schedule, "betas"):  # GaussianDiffusion1D, or your own DDPM
        return _from_betas(schedule.betas), lambda x0, t, noise: schedule.q_sample(x0, t, noise), kind
    raise InputError(f"cannot read a schedule from a {kind}: pass betas, alphas_cumprod, a diffusers scheduler "
                     "or a GaussianDiffusion1D")


def _from_betas(betas: Any) -> Schedule:
    b = np.asarray(torch.as_tensor(betas).detach().double().cpu().numpy() if torch.is_tensor(betas) else betas,
                   dtype=np.float64)
    for name in ("linear", "cosine"):
        with contextlib.suppress(ValueError, TypeError):
            ref = make_schedule(name, b.size)
            if np.allclose(ref.betas, b, rtol=1e-5, atol=1e-8):
                return Schedule(betas=b, name=name)
    return Schedule(betas=b, name="custom")


def _from_alpha_bar(alpha_bar: Any) -> Schedule:
    ab = np.asarray(torch.as_tensor(alpha_bar).detach().double().cpu().numpy(), dtype=np.float64)
    prev = np.concatenate([[1.0], ab[:-1]])
    return _from_betas(1.0 - ab / prev)


class _Seam:
    """Routes the forward of the user's modules while one of the user's functions runs.

    ``replacement`` (a tensor-returning module, diffcheck's oracle or spy) answers every call of the
    routed modules; its output is wrapped in the type the real network returns. ``trace`` is told
    (x_t, t) of each call of the sampled module. A call made by the replacement itself (a spy around
    the real network) reaches the real forward.
    """

    def __init__(self, sampled: nn.Module, others: tuple[nn.Module, ...]) -> None:
        self.sampled = sampled
        self.modules = tuple(dict.fromkeys((sampled, *others)))
        self.replacement: nn.Module | None = None
        self.trace: Callable[[torch.Tensor, Any], None] | None = None
        self._depth = 0
        self._inside = False
        self._wrap: Callable[[torch.Tensor], Any] | None = None

    @contextlib.contextmanager
    def routed(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        saved = [(m, m.__dict__.get("forward")) for m in self.modules]
        for m in self.modules:
            m.forward = self._forward(m, m.forward)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            for m, prior in saved:
                if prior is None:
                    m.__dict__.pop("forward", None)
                else:
                    m.forward = prior

    def _forward(self, module: nn.Module, real: Callable[..., Any]) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return real(*args, **kwargs)
            x, t, rest, extra = _split_call(args, kwargs)
            if module is self.sampled and self.trace is not None:
                self.trace(x, t)
            if self.replacement is None:
                return real(*args, **kwargs)
            as_tuple = kwargs.get("return_dict") is False
            self._inside = True
            try:
                if self._wrap is None and not as_tuple:  # the real network's output type, from one call
                    self._wrap = _wrapper_like(real(*args, **kwargs))
                out = self.replacement(x, torch.as_tensor(t, device=x.device), *rest, **extra)
            finally:
                self._inside = False
            return (out,) if as_tuple else self._wrap(out)

        return forward


def _split_call(args: tuple, kwargs: dict) -> tuple[torch.Tensor, Any, tuple, dict]:
    """x_t, t, the other positional arguments and the other keywords of a network call."""
    extra = {k: v for k, v in kwargs.items() if k != "return_dict"}
    pos = list(args)
    x = pos.pop(0) if pos else next((extra.pop(k) for k in _X_NAMES if k in extra), None)
    t = pos.pop(0) if pos else next((extra.pop(k) for k in _T_NAMES if k in extra), None)
    if not torch.is_tensor(x) or t is None:
        raise TypeError("diffcheck's function route calls the network as network(x_t, t, ...); this call "
                        f"passed {len(args)} positional arguments and keywords {sorted(kwargs)}")
    return x, t, tuple(pos), extra


def _wrapper_like(out: Any) -> Callable[[torch.Tensor], Any]:
    """How to hand a substitute's tensor back in the real network's output type."""
    if torch.is_tensor(out):
        return lambda x: x
    if hasattr(out, "sample") and not isinstance(out, (tuple, list)):
        kind = type(out)
        return lambda x: kind(sample=x)
    if isinstance(out, tuple):
        return lambda x: (x, *out[1:])
    return lambda x: x


class _TensorView(nn.Module):
    """The user's network as diffcheck's probes call it: ``view(x_t, t)`` returns a tensor. Its
    ``training`` flag is the user's module's (what SMP005 reads)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    @property
    def training(self) -> bool:  # type: ignore[override]
        inner = self.__dict__.get("_modules", {}).get("inner")
        return inner.training if inner is not None else self.__dict__.get("_own_training", True)

    @training.setter
    def training(self, mode: bool) -> None:
        inner = self.__dict__.get("_modules", {}).get("inner")
        if inner is not None:
            inner.training = mode
        else:
            self.__dict__["_own_training"] = mode

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _output_tensor(self.inner(x_t, t, *args, **kwargs))


@contextlib.contextmanager
def _seeded(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """A forked RNG (torch, numpy, random) seeded from ``generator``; global states restored after."""
    seed = None if generator is None else int(torch.randint(0, 2**62, (1,), generator=generator,
                                                             device=generator.device))
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
                np.random.seed(seed % 2**32)
                random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


class FunctionPipeline(Pipeline):
    """See :func:`from_functions`."""

    def __init__(self, *, network: nn.Module, sample: Callable[[int], Any], schedule: Any, length: int | None,
                 channels: int | None, loss: Callable | None, loss_at: Callable | None, online: nn.Module | None,
                 q_sample: Callable | None, denoise: Callable | None, returns: str, normaliser: Normaliser | None,
                 model_time: Callable | None, make_network: Callable | None, ema_decay: float | None,
                 steps: int | None, name: str) -> None:
        if not isinstance(network, nn.Module):
            raise InputError(f"network must be the torch.nn.Module the sampler calls, got a {type(network).__name__}")
        if online is not None and not isinstance(online, nn.Module):
            raise InputError(f"online must be a torch.nn.Module, got a {type(online).__name__}")
        if returns not in ("network", "flux"):
            raise InputError(f"returns must be 'network' or 'flux', got {returns!r}")
        if not callable(sample):
            raise InputError("sample must be a function sample(n) returning n samples")
        self._schedule, library_q, self._schedule_source = read_schedule(schedule)
        self._schedule_object = schedule
        self._net, self._online = network, online if online is not None else network
        self._seam = _Seam(network, (self._online,))
        self._view = _TensorView(network)
        self._sample_fn, self._loss_fn, self._loss_at_fn, self._denoise_fn = sample, loss, loss_at, denoise
        self._q_fn = q_sample or library_q
        self._q_source = "yours" if q_sample else (self._schedule_source if library_q else "closed form")
        self._returns, self._normaliser = returns, normaliser or Normaliser()
        if returns == "flux" and not self._normaliser.invertible:
            raise InputError("returns='flux' needs an invertible normaliser (how flux maps to the network's space)")
        self._model_time, self._factory = model_time, make_network
        self._ema_decay, self._steps = ema_decay, steps
        self.name = name
        self._shape = (channels or _config(network, ("in_channels", "channels")) or 1,
                       length or _config(network, ("sample_size", "seq_length", "length")) or
                       _config(schedule, ("seq_length", "length")))
        if not self._shape[1]:
            raise InputError("say the spectrum length: from_functions(..., length=L)")

    # --- what diffcheck reads -------------------------------------------------------------------

    @property
    def network(self) -> nn.Module:
        return self._seam.replacement if self._seam.replacement is not None else self._view

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @property
    def sample_shape(self) -> tuple[int, int]:
        return (int(self._shape[0]), int(self._shape[1]))

    @property
    def normaliser(self) -> Normaliser:
        return self._normaliser

    @property
    def device(self) -> torch.device:
        for tensor in (*self._net.parameters(), *self._net.buffers()):
            return tensor.device
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> "FunctionPipeline":
        for module in {id(m): m for m in (self._net, self._online, self._schedule_object)
                       if isinstance(m, nn.Module)}.values():
            module.to(device)
        return self

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        return self._model_time(t) if self._model_time is not None else t

    def unavailable(self, capability: str) -> str | None:
        """What the user gave decides: a capability is there when its function was passed."""
        given = {"training_loss": (self._loss_fn, "loss"), "training_loss_at": (self._loss_at_fn, "loss_at"),
                 "denoise": (self._denoise_fn, "denoise"), "make_network": (self._factory, "make_network")}
        if capability not in given:
            return super().unavailable(capability)
        fn, argument = given[capability]
        return None if fn is not None else f"from_functions was given no {argument}= ({CAPABILITIES[capability]})"

    def make_network(self) -> nn.Module:
        self.require("make_network")
        return _TensorView(self._factory())

    def state_modules(self) -> tuple[nn.Module, ...]:
        return self._seam.modules  # the user's own modules (sampled and online), not diffcheck's views

    def weights_info(self) -> WeightsInfo:
        ema = self._online is not self._net
        return WeightsInfo(online=_TensorView(self._online) if ema else None, ema_decay=self._ema_decay if ema else None,
                           steps=self._steps)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "route": "functions", "schedule_from": self._schedule_source,
                "q_sample": self._q_source, "returns": self._returns}

    # --- the user's functions, routed and seeded ----------------------------------------------

    def _set_network(self, network: nn.Module) -> None:
        self._seam.replacement = None if network is self._view else network

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self._q_fn is None:
            return self._schedule.q_sample(x0, t, noise)
        with self._seam.routed():
            return self._q_fn(x0, t, noise)

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.require("training_loss")
        with _seeded(generator, x0.device), self._seam.routed():
            return torch.as_tensor(self._loss_fn(x0))

    def training_loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        self.require("training_loss_at")
        with self._seam.routed():
            out = torch.as_tensor(self._loss_at_fn(x0, t, noise))
            if out.dim() == 0 and x0.shape[0] > 1:  # a mean over the batch: one call per spectrum
                out = self._loss_per_row(x0, t, noise)
            return out.reshape(x0.shape[0])

    def _loss_per_row(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The user's batch-mean ``loss_at`` called one spectrum at a time; the network in place
        (an oracle of the batch, a probe's time values per row) answers for that row."""
        batch = self._seam.replacement
        losses = []
        try:
            for i in range(x0.shape[0]):
                if batch is not None:
                    self._seam.replacement = row_of(batch, i)
                losses.append(torch.as_tensor(self._loss_at_fn(x0[i:i + 1], t[i:i + 1], noise[i:i + 1])))
        finally:
            self._seam.replacement = batch
        if batch is not None:
            rows_done(batch)
        return torch.stack(losses)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.require("denoise")
        with self._seam.routed():
            return _output_tensor(self._denoise_fn(x_t, t))

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> torch.Tensor:
        calls: list[int] = []
        T = self._schedule.T

        def trace(x: torch.Tensor, t: Any) -> None:
            if callback is None:
                return
            tt = torch.as_tensor(t, device=x.device)
            try:
                index = int(timestep_index(tt, T).flatten()[0])
            except ValueError:
                index = float(tt.double().flatten()[0])
            callback(Step(i=len(calls), t=index, x_t=x, t_network=tt))
            calls.append(1)

        self._seam.trace = trace
        try:
            with torch.no_grad(), _seeded(generator, self.device), self._seam.routed():
                out = self._sample_fn(n)
        finally:
            self._seam.trace = None
        x = _output_tensor(out) if not isinstance(out, np.ndarray) else torch.as_tensor(out)
        x = x.detach()
        if x.dim() == 2:
            x = x[:, None, :]
        if x.shape[0] != n or tuple(x.shape[1:]) != self.sample_shape:
            raise InputError(f"sample({n}) returned shape {tuple(x.shape)}; expected ({n}, "
                             f"{self.sample_shape[0]}, {self.sample_shape[1]})")
        if self._returns == "flux":
            flat = x.double().cpu().numpy().reshape(-1, x.shape[-1])
            x = torch.as_tensor(self._normaliser.normalise(flat).reshape(x.shape), dtype=torch.float32)
        return x.float().to(self.device)


def _config(obj: Any, names: tuple[str, ...]) -> int | None:
    """A size the object's config states (diffusers ``config.sample_size``, ddp ``seq_length``, ...)."""
    for source in (getattr(obj, "config", None), obj):
        for name in names:
            value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None
