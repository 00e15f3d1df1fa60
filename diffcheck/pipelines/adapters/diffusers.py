"""Hugging Face diffusers behind the Pipeline protocol: a scheduler (DDPMScheduler, DDIMScheduler,
with their prediction_type, timestep_spacing, clipping) and a UNet1DModel or any ``net(x, t)``.

The forward process is the scheduler's ``add_noise``; the sampler is the canonical diffusers
loop (``set_timesteps``, then ``scale_model_input``, the network, ``scheduler.step`` for each
timestep), so the scheduler's own spacing, decoding and clipping are what the checks measure.
diffusers stores no training loss, so the adapter declares ``training_loss`` unavailable and the
training-target oracles SKIP while the learned-behaviour probes still run.

A saved folder (``DDPMPipeline.save_pretrained``: model_index.json, unet/, scheduler/) loads with
:func:`from_folder`; only classes of the diffusers package are instantiated, and weights load
through diffusers (safetensors). An optional ``diffcheck.json`` in the folder says what the
folder cannot: the inference step count, DDIM's eta and the data normalisation.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from diffcheck.errors import InputError
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.pipeline import Pipeline, Step, StepCallback
from diffcheck.pipelines.schedule import Schedule
from diffcheck.text import first_line, plain
from diffcheck.pipelines.adapters._imports import require

__all__ = ["DiffusersPipeline", "TensorOutput", "from_folder", "is_diffusers_folder", "SIDECAR"]

#: diffcheck's optional file in a diffusers folder, and the keys it may hold.
SIDECAR = "diffcheck.json"
_BIN = "diffusion_pytorch_model.bin"
_SIDECAR_KEYS = frozenset({"num_inference_steps", "eta", "normalisation", "data_source"})
#: Steps the diffusers pipelines use by default: DDPMPipeline all of them, DDIMPipeline 50.
_DEFAULT_STEPS = {"DDPMScheduler": None, "DDIMScheduler": 50}
NO_TRAINING_LOSS = ("diffusers has no training loss: a diffusers pipeline stores the network and the scheduler, not "
                    "the training script's target (PAR003 still measures what the network learned)")


class TensorOutput(nn.Module):
    """``net(x, t)`` returning a tensor, for networks that return ``UNet1DOutput`` or a tuple."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return as_tensor(self.inner(x, t, *args, **kwargs))


def as_tensor(out: Any) -> torch.Tensor:
    """The prediction in a diffusers model output (``.sample``), a tuple's first item, or the tensor."""
    if torch.is_tensor(out):
        return out
    if hasattr(out, "sample"):
        return out.sample
    if isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        return out[0]
    raise TypeError(f"the network returned {type(out).__name__}, expected a tensor or an object with .sample")


class DiffusersPipeline(Pipeline):
    """A diffusers scheduler and the network it steps with (any ``net(x, t)``)."""

    def __init__(self, network: nn.Module, scheduler: Any, *, num_inference_steps: int | None = None,
                 eta: float = 0.0, sample_shape: tuple[int, int] | None = None,
                 normaliser: Normaliser | None = None, meta: Mapping[str, Any] | None = None) -> None:
        for method in ("set_timesteps", "step", "add_noise"):
            if not callable(getattr(scheduler, method, None)):
                raise InputError(f"{type(scheduler).__name__} is not a diffusers scheduler (no {method})")
        self.scheduler = scheduler
        self.raw_network = network
        self._net = network if isinstance(network, TensorOutput) else TensorOutput(network)
        self.steps = int(num_inference_steps or _DEFAULT_STEPS.get(type(scheduler).__name__) or self.T)
        if not 1 <= self.steps <= self.T:
            raise InputError(f"num_inference_steps must be in 1..{self.T}, got {self.steps}")
        self.eta = float(eta)
        self._shape = sample_shape or _shape_from_config(network)
        self._normaliser = normaliser or Normaliser()
        self._schedule = Schedule(betas=scheduler.betas.detach().double().cpu().numpy(),
                                  name=str(scheduler.config.get("beta_schedule", "custom")))
        self.meta = dict(meta or {})
        self.name = f"diffusers {type(scheduler).__name__} + {type(network).__name__}"

    @property
    def T(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    # -- the protocol ---------------------------------------------------------------------------
    @property
    def network(self) -> nn.Module:
        return self._net

    @property
    def schedule(self) -> Schedule:
        """The scheduler's betas (after any rescaling it applied, e.g. rescale_betas_zero_snr)."""
        return self._schedule

    @property
    def sample_shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def normaliser(self) -> Normaliser:
        return self._normaliser

    def to(self, device: torch.device | str) -> "DiffusersPipeline":
        self._net.to(device)
        return self

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(x0, noise, t.long())

    def unavailable(self, capability: str) -> str | None:
        if capability == "training_loss":
            return NO_TRAINING_LOSS
        if capability == "make_network" and (getattr(self.raw_network, "config", None) is None
                                             or not hasattr(type(self.raw_network), "from_config")):
            return f"{type(self.raw_network).__name__} has no diffusers config to build a fresh network from"
        return super().unavailable(capability)

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.require("training_loss")  # raises Skip with NO_TRAINING_LOSS (declared unavailable above)
        raise NotImplementedError(NO_TRAINING_LOSS)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> torch.Tensor:
        """The diffusers sampling loop, as DDPMPipeline/DDIMPipeline run it, in eval mode."""
        self._net.eval()
        scheduler = self._fresh_scheduler()
        x = torch.randn((n, *self.sample_shape), generator=generator, device=self.device) * scheduler.init_noise_sigma
        extra = self._step_kwargs(scheduler, generator)
        with torch.no_grad():
            for i, t in enumerate(scheduler.timesteps):
                out = self._net(scheduler.scale_model_input(x, t), t)
                step = scheduler.step(out, t, x, **extra)
                if callback is not None:
                    callback(Step(i=i, t=int(t), x_t=x, x0_hat=getattr(step, "pred_original_sample", None),
                                  out=out, x_next=step.prev_sample))
                x = step.prev_sample
        return x

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The scheduler's own x0 prediction (its prediction_type and clipping) for one step at ``t``."""
        scheduler = self._fresh_scheduler()
        out = self._net(x_t, t)
        rows = [scheduler.step(out[i:i + 1], int(t[i]), x_t[i:i + 1], **self._step_kwargs(scheduler, None))
                for i in range(x_t.shape[0])]
        return torch.cat([r.pred_original_sample for r in rows])

    def _set_network(self, network: nn.Module) -> None:
        self._net = network

    def weights_info(self) -> Any:
        """The load report of ``from_pretrained`` (where the folder loader got one); no EMA record."""
        from diffcheck.pipelines.pipeline import WeightsInfo

        report = self.meta.get("load_report")
        if report is None:
            return WeightsInfo()
        return WeightsInfo(missing_keys=tuple(report["missing_keys"]), unexpected_keys=tuple(report["unexpected_keys"]))

    def make_network(self) -> nn.Module:
        self.require("make_network")
        return TensorOutput(type(self.raw_network).from_config(self.raw_network.config)).to(self.device)

    def describe(self) -> dict[str, Any]:
        cfg = self.scheduler.config
        return {**super().describe(), "scheduler": type(self.scheduler).__name__,
                "prediction_type": cfg.get("prediction_type"), "timestep_spacing": cfg.get("timestep_spacing"),
                "num_inference_steps": self.steps, "eta": self.eta,
                "parameters": sum(p.numel() for p in self._net.parameters()),
                "normalisation": self._normaliser.kind, **self.meta}

    # -- helpers ------------------------------------------------------------------------------
    def _fresh_scheduler(self) -> Any:
        """A copy with its timesteps set: schedulers keep per-run state that must not leak."""
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(self.steps, device=self.device)
        return scheduler

    def _step_kwargs(self, scheduler: Any, generator: torch.Generator | None) -> dict[str, Any]:
        params = inspect.signature(scheduler.step).parameters
        kwargs: dict[str, Any] = {}
        if "generator" in params:
            kwargs["generator"] = generator
        if "eta" in params:
            kwargs["eta"] = self.eta
        return kwargs


def _shape_from_config(network: nn.Module) -> tuple[int, int]:
    config = getattr(network, "config", None)
    try:
        return int(config["in_channels"]), int(config["sample_size"])
    except (TypeError, KeyError, ValueError):
        raise InputError(f"{type(network).__name__} has no in_channels/sample_size config: pass sample_shape="
                         "(channels, length)") from None


# -- saved folders ----------------------------------------------------------------------------------
def is_diffusers_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and ((p / "model_index.json").is_file()
                           or ((p / "unet" / "config.json").is_file()
                               and (p / "scheduler" / "scheduler_config.json").is_file()))


def from_folder(path: str | os.PathLike, *, num_inference_steps: int | None = None, eta: float | None = None,
                normaliser: Normaliser | None = None, trust: bool | None = None) -> DiffusersPipeline:
    """A saved diffusers pipeline folder: its unet (or model) and scheduler, plus ``diffcheck.json``.

    Weights load from safetensors, or from a pickled ``diffusion_pytorch_model.bin`` weights-only
    unless trusted (``trust``, else :func:`~diffcheck.pipelines.loading.trusted_checkpoints`).
    """
    folder = Path(path)
    diffusers = require("diffusers", "diffusers")
    net_dir = _component_dir(folder, ("unet", "model", "transformer"))
    sidecar = _read_sidecar(folder)
    net_cls = _diffusers_class(diffusers, _class_name(net_dir / "config.json"), folder)
    scheduler_cls = _diffusers_class(diffusers, _class_name(folder / "scheduler" / "scheduler_config.json"), folder)
    with _quiet_library(diffusers):
        network, report = _network(net_cls, net_dir, folder, trust)
        scheduler = _pretrained(lambda: scheduler_cls.from_pretrained(folder / "scheduler"), folder)
    norm = normaliser or Normaliser.from_dict(sidecar.get("normalisation", {}))
    meta = {"path": str(folder), "diffusers_version": diffusers.__version__,
            "data_source": sidecar.get("data_source", ""), "load_report": report}
    return DiffusersPipeline(network.eval(), scheduler,
                             num_inference_steps=num_inference_steps or sidecar.get("num_inference_steps"),
                             eta=eta if eta is not None else float(sidecar.get("eta", 0.0)),
                             normaliser=norm, meta=meta)


def _network(net_cls: Any, net_dir: Path, folder: Path, trust: bool | None) -> tuple[nn.Module, dict[str, list[str]]]:
    """The network and its load report: safetensors through diffusers, a pickled .bin through diffcheck."""
    weights_bin = net_dir / _BIN
    if weights_bin.is_file() and not any(net_dir.glob("*.safetensors")):
        from diffcheck.pipelines.reference.checkpoint import load_torch_file

        state = load_torch_file(weights_bin, trust=trust)  # refused (or trusted) like any checkpoint
        network = _pretrained(lambda: net_cls.from_config(net_cls.load_config(net_dir)), folder)
        return network, _load_bin_state(network, state, weights_bin)
    network, loading = _pretrained(lambda: net_cls.from_pretrained(net_dir, output_loading_info=True,
                                                                   use_safetensors=True), folder)
    return network, _load_report(loading)


def _load_bin_state(network: nn.Module, state: Any, where: Path) -> dict[str, list[str]]:
    """Load ``state`` as from_pretrained does (non-strict; mis-shaped keys left out and reported missing)."""
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError(f"{where} is not a state_dict of tensors; save the network with save_pretrained")
    own = network.state_dict()
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    result = network.load_state_dict({k: v for k, v in state.items() if k not in mismatched}, strict=False)
    return {"missing_keys": sorted(map(str, result.missing_keys)) + mismatched,
            "unexpected_keys": sorted(map(str, result.unexpected_keys))}


def _pretrained(load: Any, folder: Path) -> Any:
    """``load()``; whatever diffusers raises about the folder becomes one line."""
    try:
        return load()
    except Exception as exc:  # diffusers raises many types for a broken folder: one line, not a traceback
        raise InputError(f"cannot load the diffusers folder {folder}: {type(exc).__name__}: "
                         f"{first_line(exc, 200) or 'no detail'}") from None


@contextlib.contextmanager
def _quiet_library(diffusers: Any) -> Iterator[None]:
    """diffusers logs fallbacks, missing keys and its own errors to stderr; diffcheck reports them itself."""
    logging = diffusers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity(logging.CRITICAL)
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _load_report(loading: Mapping[str, Any]) -> dict[str, list[str]]:
    """Missing and unexpected keys of a from_pretrained load (mis-shaped ones count as missing)."""
    mismatched = [str(m[0]) if isinstance(m, (tuple, list)) else str(m) for m in loading.get("mismatched_keys", [])]
    return {"missing_keys": sorted(map(str, loading.get("missing_keys", []))) + mismatched,
            "unexpected_keys": sorted(map(str, loading.get("unexpected_keys", [])))}


def _component_dir(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name / "config.json").is_file():
            return folder / name
    raise InputError(f"the diffusers folder {folder} has no network: none of {', '.join(n + '/config.json' for n in names)}")


def _class_name(config: Path) -> str:
    data = _read_json(config)
    name = data.get("_class_name") if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise InputError(f"{config} names no _class_name; save the folder with save_pretrained")
    return name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"cannot read {path}: not valid JSON ({type(exc).__name__}: {first_line(exc, 160)})") from None


def _diffusers_class(diffusers: Any, name: str, folder: Path) -> Any:
    """Only classes of the diffusers package: a folder cannot make diffcheck import other code."""
    cls = getattr(diffusers, name, None)
    if not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
        raise InputError(f"the diffusers folder {folder} names {name!r}, which is not a diffusers class diffcheck can "
                         "load; write a --pipeline file that builds it (see README 'Your own checkpoint')")
    return cls


def _read_sidecar(folder: Path) -> dict[str, Any]:
    path = folder / SIDECAR
    if not path.is_file():
        return {}
    data = _read_json(path)
    unknown = set(data) - _SIDECAR_KEYS if isinstance(data, dict) else {"(not an object)"}
    if unknown:
        raise InputError(f"{path}: unknown keys {plain(', '.join(sorted(unknown)))}; "
                         f"known: {', '.join(sorted(_SIDECAR_KEYS))}")
    return data
