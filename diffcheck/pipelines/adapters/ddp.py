"""denoising-diffusion-pytorch (lucidrains) behind the Pipeline protocol: GaussianDiffusion1D
objects and the checkpoint dicts that ``Trainer1D.save`` writes.

Everything diffcheck measures runs the library's own code: ``q_sample``, ``p_losses`` (the
training loss, with t and the noise drawn from diffcheck's generator) and ``sample`` (its
ancestral loop or DDIM, whichever the object is configured for). The objective and the schedule
are read from the object; the objective the checkpoint was *trained* with is read from its
``loss_weight`` buffer, which the library derives from the objective.

A Trainer1D checkpoint holds weights, not the architecture, so a user writes the ~10-line file of
``examples/trainer1d_pipeline.py``: the GaussianDiffusion1D of the training script, and
:func:`from_trainer1d`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from diffcheck.errors import InputError
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.pipeline import Pipeline, Step, StepCallback
from diffcheck.pipelines.schedule import Schedule
from diffcheck.text import first_line, plain
from diffcheck.pipelines.adapters._imports import ddp1d

__all__ = ["DDPPipeline", "from_trainer1d", "is_trainer1d_checkpoint", "is_gaussian_diffusion_1d", "trainer1d_summary",
           "GaussianDiffusion1D", "Unet1D"]

#: The library's objective names and diffcheck's parameterisations.
OBJECTIVES = {"pred_noise": "eps", "pred_x0": "x0", "pred_v": "v"}
_TRAINER1D_KEYS = frozenset({"step", "model", "opt", "ema"})


def __getattr__(name: str) -> Any:
    """``Unet1D`` and ``GaussianDiffusion1D`` from the library's 1D module (no torchvision needed)."""
    if name in {"Unet1D", "GaussianDiffusion1D", "Trainer1D", "Dataset1D"}:
        return getattr(ddp1d(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DDPPipeline(Pipeline):
    """A ``GaussianDiffusion1D`` (the sampling object) and, where it differs, the training object.

    ``factory`` (a zero-argument function returning a fresh GaussianDiffusion1D) lets
    :meth:`make_network` build a freshly initialised network with the library's constructor.
    """

    name = "denoising-diffusion-pytorch GaussianDiffusion1D"

    def __init__(self, diffusion: nn.Module, *, training: nn.Module | None = None,
                 normaliser: Normaliser | None = None, online: nn.Module | None = None,
                 factory: Callable[[], nn.Module] | None = None, meta: Mapping[str, Any] | None = None,
                 stored_buffers: Mapping[str, torch.Tensor] | None = None,
                 declared: Schedule | None = None) -> None:
        _validate(diffusion)
        self.diffusion = diffusion
        self.training = training if training is not None else diffusion
        _validate(self.training)
        self.online = online if online is not None else diffusion.model
        self.factory = factory
        self.meta = dict(meta or {})
        #: Schedule tensors as the checkpoint stored them (betas, alphas_cumprod), by name.
        self.stored_buffers = dict(stored_buffers or {})
        #: The checkpoint's tensors for the sampled Unet1D (set by from_trainer1d; None otherwise).
        self.stored_state: Mapping[str, torch.Tensor] | None = None
        #: The schedule the user's constructor declares (read before the checkpoint's buffers were
        #: loaded over it, see from_trainer1d), else the training object's registered betas.
        self._schedule = declared if declared is not None else library_schedule(self.training)
        # auto_normalize maps the library's [0, 1] data to the network's [-1, 1]: the default
        # normaliser takes the data the user fed Trainer1D to the network's space the same way.
        auto = diffusion.normalize is not getattr(ddp1d(), "identity")
        self._normaliser = normaliser or (Normaliser("global_minmax", 0.0, 1.0) if auto else Normaliser())

    # -- the protocol ---------------------------------------------------------------------------
    @property
    def network(self) -> nn.Module:
        return self.diffusion.model

    @property
    def schedule(self) -> Schedule:
        """The training object's registered betas (read once: the weights are loaded by then)."""
        return self._schedule

    @property
    def sample_shape(self) -> tuple[int, int]:
        return (int(self.diffusion.channels), int(self.diffusion.seq_length))

    @property
    def normaliser(self) -> Normaliser:
        return self._normaliser

    @property
    def device(self) -> torch.device:
        return self.diffusion.betas.device

    def to(self, device: torch.device | str) -> "DDPPipeline":
        for module in self._modules():
            module.to(device)
        return self

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.training.q_sample(x0, t.long(), noise)

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The library's ``p_losses`` (what ``GaussianDiffusion1D.forward`` computes after its
        auto-normalisation), with t ~ U{0..T-1} and the noise drawn from ``generator``."""
        t = torch.randint(0, self.training.num_timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
        return self.training.p_losses(x0, t, noise=noise)

    def training_loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``p_losses`` per sample (its loss_weight applied), before the mean over the batch."""
        return self.training.p_losses(x0, t.long(), noise=noise, loss_reduction="none")

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The sampler's x0: ``model_predictions`` with the clipping both library samplers apply."""
        return self.diffusion.model_predictions(x_t, t.long(), clip_x_start=True).pred_x_start

    def weights_info(self) -> Any:
        """Strict loads (a mismatch is an InputError); the schedule buffers stored with the weights."""
        from diffcheck.pipelines.pipeline import WeightsInfo

        ema = self.online is not self.network
        return WeightsInfo(online=self.online if ema else None, ema_decay=self.meta.get("ema_decay") if ema else None,
                           steps=self.meta.get("step"), missing_keys=(), unexpected_keys=(),
                           schedule_buffers=dict(self.stored_buffers), stored_state=self.stored_state)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               callback: StepCallback | None = None) -> torch.Tensor:
        """The library's ``sample`` (ancestral loop or DDIM) in eval mode, as Trainer1D samples.

        Its noise comes from torch's global generator, so the run is seeded from ``generator``
        inside a forked RNG state; each network call is reported to ``callback``.
        """
        self.network.eval()
        seed = _seed_from(generator)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), _quiet_progress(), _traced(self.diffusion, callback):
            torch.manual_seed(seed)
            out = self.diffusion.sample(batch_size=n)
        return self.diffusion.normalize(out)  # the library returns unnormalize(x): back to the network's space

    def _set_network(self, network: nn.Module) -> None:
        self.diffusion.model = network
        self.training.model = network

    @contextlib.contextmanager
    def network_replaced(self, network: nn.Module) -> Iterator[None]:
        originals = [(obj, obj.model) for obj in {id(o): o for o in (self.diffusion, self.training)}.values()]
        self._set_network(network)
        try:
            yield
        finally:
            for obj, model in originals:
                obj.model = model

    def unavailable(self, capability: str) -> str | None:
        if capability == "make_network" and self.factory is None:
            return ("a fresh Unet1D needs the GaussianDiffusion1D factory: pass from_trainer1d(checkpoint, "
                    "make_diffusion) a function that builds it, not an object")
        return super().unavailable(capability)

    def make_network(self) -> nn.Module:
        self.require("make_network")
        return self.factory().model.to(self.device)

    def describe(self) -> dict[str, Any]:
        d = self.diffusion
        sampler = f"ddim {d.sampling_timesteps} steps, eta {d.ddim_sampling_eta:g}" if d.is_ddim_sampling \
            else "ancestral"
        return {**super().describe(), "objective": d.objective, "training_objective": self.training.objective,
                "sampler": sampler, "parameters": sum(p.numel() for p in self.network.parameters()),
                "normalisation": self._normaliser.kind, **self.meta}

    def _modules(self) -> list[nn.Module]:
        return list({id(m): m for m in (self.diffusion, self.training, self.online)}.values())


def _validate(diffusion: Any) -> None:
    needed = ("model", "q_sample", "p_losses", "sample", "betas", "num_timesteps", "seq_length", "objective")
    missing = [a for a in needed if not hasattr(diffusion, a)]
    if missing:
        raise InputError(f"expected a denoising-diffusion-pytorch GaussianDiffusion1D, got {type(diffusion).__name__} "
                         f"without {', '.join(missing)}")
    if not getattr(diffusion, "channel_first", True):
        raise InputError("GaussianDiffusion1D(channel_first=False) is not supported: diffcheck works on [batch, "
                         "channels, length]")
    if getattr(diffusion, "self_condition", False):
        raise InputError("self-conditioned GaussianDiffusion1D is not supported yet: its loss draws from Python's "
                         "random module, so oracle losses are not reproducible")


def library_schedule(diffusion: nn.Module) -> Schedule:
    """The object's registered betas, named after the library schedule they equal."""
    betas = diffusion.betas.detach().double().cpu()
    lib, T = ddp1d(), int(betas.numel())
    name = "custom"
    for kind, fn in (("linear", lib.linear_beta_schedule), ("cosine", lib.cosine_beta_schedule)):
        if torch.equal(fn(T).to(torch.float32).double(), betas):
            name = kind
    return Schedule(betas=betas.numpy(), name=name)


def _seed_from(generator: torch.Generator | None) -> int:
    if generator is None:
        return int(torch.randint(0, 2**62, (1,)))
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """The library's sampling loops wrap themselves in tqdm; diffcheck shows its own progress."""
    lib = ddp1d()
    original = lib.tqdm
    lib.tqdm = lambda iterable=None, *args, **kwargs: iterable
    try:
        yield
    finally:
        lib.tqdm = original


@contextlib.contextmanager
def _traced(diffusion: nn.Module, callback: StepCallback | None) -> Iterator[None]:
    """Report every ``model_predictions`` call of a sampling run: t, x_t and the x0 prediction."""
    if callback is None:
        yield
        return
    original, counter = diffusion.model_predictions, itertools.count()

    def traced(x: torch.Tensor, t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        pred = original(x, t, *args, **kwargs)
        callback(Step(i=next(counter), t=int(t.flatten()[0]), x_t=x, x0_hat=pred.pred_x_start))
        return pred

    diffusion.model_predictions = traced
    try:
        yield
    finally:
        del diffusion.model_predictions  # the class's method again


# -- Trainer1D checkpoints ------------------------------------------------------------------------
def is_trainer1d_checkpoint(obj: Any) -> bool:
    """A dict as ``Trainer1D.save`` writes it: step, model (GaussianDiffusion1D), opt, ema (EMA wrapper)."""
    if not isinstance(obj, dict) or not _TRAINER1D_KEYS <= set(obj):
        return False
    model, ema = obj["model"], obj["ema"]
    return isinstance(model, Mapping) and isinstance(ema, Mapping) and "betas" in model \
        and any(str(k).startswith("ema_model.") for k in ema)


def is_gaussian_diffusion_1d(obj: Any) -> bool:
    """A whole GaussianDiffusion1D object (``torch.save(diffusion)``, loaded with --trust-checkpoint)."""
    return isinstance(obj, nn.Module) and type(obj).__name__ == "GaussianDiffusion1D"


def trainer1d_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a Trainer1D dict says about itself: step, version, T, training objective, input channels, dim."""
    model = obj["model"]
    conv = model.get("model.init_conv.weight")
    conv = conv if torch.is_tensor(conv) and conv.dim() >= 2 else None
    try:
        step, T = int(obj.get("step", 0)), int(model["betas"].numel())
    except (TypeError, ValueError, AttributeError):
        raise InputError("the Trainer1D checkpoint's step or betas are not numbers: it is damaged; "
                         "save it again with Trainer1D.save") from None
    return {"step": step, "version": first_line(obj.get("version", "unknown"), 40),
            "T": T, "objective": _objective_from_loss_weight(model),
            "channels": int(conv.shape[1]) if conv is not None else None,
            "dim": int(conv.shape[0]) if conv is not None else None}


def _objective_from_loss_weight(state: Mapping[str, torch.Tensor]) -> str:
    """The library sets loss_weight = 1 (pred_noise), snr (pred_x0) or snr/(snr+1) (pred_v)."""
    lw, ab = state.get("loss_weight"), state.get("alphas_cumprod")
    if not (torch.is_tensor(lw) and torch.is_tensor(ab)) or lw.shape != ab.shape:
        return "unknown"
    snr = ab.double() / (1 - ab.double())
    for name, expected in (("pred_noise", torch.ones_like(snr)), ("pred_x0", snr), ("pred_v", snr / (snr + 1))):
        if torch.allclose(lw.double(), expected, rtol=1e-3, atol=1e-6):
            return name
    return "unknown"


def from_trainer1d(checkpoint: str | os.PathLike | Mapping[str, Any],
                   diffusion: nn.Module | Callable[[], nn.Module], *, weights: str = "ema",
                   training: nn.Module | Callable[[], nn.Module] | None = None,
                   normaliser: Normaliser | None = None, ema_decay: float | None = None) -> DDPPipeline:
    """A pipeline from a Trainer1D checkpoint loaded into the user's GaussianDiffusion1D.

    ``diffusion`` is the object of the training script, or a function that builds it (then
    :meth:`DDPPipeline.make_network` works too). ``weights`` picks "ema" (the EMA model, which
    Trainer1D samples with) or "online". ``training``, where the training script's object differs
    from the sampling one, gets the same weights and provides the training loss. ``ema_decay`` is
    the Trainer1D argument (the checkpoint does not store it; WGT checks use it).
    """
    if weights not in ("ema", "online"):
        raise InputError(f"weights must be 'ema' or 'online', got {weights!r}")
    obj = checkpoint if isinstance(checkpoint, Mapping) else _read(checkpoint)
    where = "the checkpoint" if isinstance(checkpoint, Mapping) else str(checkpoint)
    if not is_trainer1d_checkpoint(obj):
        raise InputError(f"{where} is not a Trainer1D checkpoint (expected keys step, model, opt, ema)")
    factory = None if isinstance(diffusion, nn.Module) else diffusion
    sampler = _instantiate(diffusion)
    trainer = _instantiate(training) if training is not None else None
    # What the user's constructor declares, before load_state_dict overwrites the registered schedule
    # buffers with the checkpoint's: WGT005 compares the stored ones against this.
    declared = library_schedule(trainer if trainer is not None else sampler)
    ema = {k[len("ema_model."):]: v for k, v in obj["ema"].items() if str(k).startswith("ema_model.")}
    state = ema if weights == "ema" else obj["model"]
    _load_into(sampler, state, where, f"{weights} weights")
    online = sampler.model  # the sampled network itself, unless it holds the EMA weights
    if weights == "ema":
        online = copy.deepcopy(sampler.model)
        online_state = {k[len("model."):]: v for k, v in obj["model"].items() if str(k).startswith("model.")}
        _load_into(online, online_state, where, "online weights")
    if trainer is not None:
        _load_into(trainer, state, where, f"{weights} weights")
        trainer.model = sampler.model
    summary = trainer1d_summary(obj)
    buffers = {k: state[k] for k in ("betas", "alphas_cumprod") if k in state}
    meta = {"weights": weights, "step": summary["step"], "ema_decay": ema_decay, "library_version": summary["version"],
            "checkpoint_objective": summary["objective"], "path": where,
            "ema_step": int(obj["ema"]["step"]) if torch.is_tensor(obj["ema"].get("step")) else None}
    pipe = DDPPipeline(sampler.eval(), training=trainer, normaliser=normaliser, online=online.eval(),
                       factory=factory, meta=meta, stored_buffers=buffers, declared=declared)
    pipe.stored_state = {k[len("model."):]: v for k, v in state.items() if str(k).startswith("model.")}
    return pipe


def _instantiate(diffusion: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    obj = diffusion if isinstance(diffusion, nn.Module) else diffusion()
    _validate(obj)
    return obj


def _read(path: str | os.PathLike) -> Any:
    from diffcheck.pipelines.loading import read_torch_file

    return read_torch_file(path)


def _load_into(module: nn.Module, state: Mapping[str, torch.Tensor], where: str, what: str) -> None:
    """A strict load; a mismatch is one line naming the first missing, unexpected or mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {label} ({plain(', '.join(map(str, v[:2])))}{', ...' if len(v) > 2 else ''})"
                 for label, v in (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes))
                 if v]
        raise InputError(f"{where}: the {what} do not fit your {type(module).__name__}: {'; '.join(parts)}; build "
                         "Unet1D and GaussianDiffusion1D with the arguments of the training script")
    module.load_state_dict(state, strict=True)
