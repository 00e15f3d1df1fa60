"""WGT: are the weights the sampler uses finite, fully loaded, and the trained ones?

Reads the network and what the pipeline reports through ``Pipeline.weights_info()``: the online
network next to an EMA copy, the EMA decay, the steps trained, the strict-load report and any
schedule tensors stored with the weights. A check whose input the pipeline does not report SKIPs
with the reason.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from diffcheck.engine.check import Check
from diffcheck.errors import Skip
from diffcheck.measure.learned import geometric_mean
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.engine.results import Status, Verdict

__all__ = ["WGT001", "WGT002", "WGT003", "WGT004", "WGT005"]

_th = MappingProxyType
_SHOWN = 3  # names listed in a message


def _names(names: list[str]) -> str:
    more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _nonfinite(net: nn.Module) -> dict[str, int]:
    """Tensor name -> count of NaN/Inf entries, for the tensors that have any."""
    out = {}
    for name, tensor in (*net.named_parameters(), *net.named_buffers()):
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor.detach())).sum())
            if bad:
                out[name] = bad
    return out


class WGT001(Check):
    """The weights are finite (no NaN or Inf)"""

    id = "WGT001"
    explains = frozenset({"WGT003", "LOSS001", "PAR003", "TEMB", "DIST"})
    next_step = ("find the step where the training loss first became NaN: lower the learning rate, clip gradients, "
                 "train in fp32 or bf16 instead of fp16, and resume from the last finite checkpoint")

    def measure(self, pipeline: Pipeline) -> dict[str, Any]:
        nets = {"sampled": pipeline.network}
        online = pipeline.weights_info().online
        if online is not None and online is not pipeline.network:
            nets["online"] = online
        bad = {f"{which}:{name}": n for which, net in nets.items() for name, n in _nonfinite(net).items()}
        total = sum(p.numel() for net in nets.values() for p in net.parameters())
        return {"nonfinite": sum(bad.values()), "tensors": sorted(bad), "checked": sorted(nets), "elements": total}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        where = " and ".join(o["checked"])
        if o["nonfinite"] == 0:
            return Verdict(Status.PASS, f"all {o['elements']} weights finite ({where} network)")
        return Verdict(Status.FAIL, f"{o['nonfinite']} weights are NaN or Inf in {len(o['tensors'])} tensors: "
                       f"{_names(o['tensors'])}", (f"checked: {where} network(s), {o['elements']} parameters",),
                       ("training diverged (fp16/AMP overflow, too high a learning rate) and the checkpoint was "
                        "saved anyway", "an EMA update with a NaN online network"))


class WGT002(Check):
    """The network the sampler calls holds the file's weights: every key loaded, none left over"""

    id = "WGT002"
    explains = frozenset({"WGT003", "LOSS001", "PAR003", "TEMB", "DIST"})
    next_step = ("load with strict=True and fix the key names (strip 'module.' or '_orig_mod.') or the model config "
                 "until no key is missing; sample with the module you loaded into")

    def measure(self, pipeline: Pipeline) -> dict[str, Any]:
        info = pipeline.weights_info()
        own = pipeline.network.state_dict()
        if info.stored_state is not None:
            # what the file holds against what the sampled network holds, key by key and value by value
            stored = info.stored_state
            missing, unexpected = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
            differing = sorted(k for k in set(own) & set(stored) if not _same(own[k], stored[k]))
            basis = "file"
        elif info.missing_keys is not None and info.unexpected_keys is not None:
            missing, unexpected, differing, basis = list(info.missing_keys), list(info.unexpected_keys), [], "load report"
        else:
            raise Skip("the pipeline reports neither the tensors its file holds (WeightsInfo.stored_state) nor how "
                       "its weights were loaded (WeightsInfo.missing_keys)")
        prefixed = [k for k in unexpected if k.split(".", 1)[-1] in set(missing) and k.startswith("module.")]
        return {"missing": len(missing), "unexpected": len(unexpected), "differing": len(differing),
                "missing_keys": missing, "unexpected_keys": unexpected, "differing_keys": differing,
                "module_prefixed": len(prefixed), "expected": len(own), "basis": basis}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["missing"] == 0 and o["unexpected"] == 0 and o["differing"] == 0:
            if o["basis"] == "file":
                return Verdict(Status.PASS, f"all {o['expected']} tensors of the sampled network equal the file's, "
                               "no key left over")
            return Verdict(Status.PASS, f"all {o['expected']} tensors loaded, no unexpected keys (the pipeline's "
                           "load report)")
        ev = (f"missing: {_names(o['missing_keys']) or 'none'}", f"unexpected: {_names(o['unexpected_keys']) or 'none'}",
              f"values unlike the file's: {_names(o['differing_keys']) or 'none'}")
        if o["missing"] or o["unexpected"]:
            summary = (f"{o['missing']} of {o['expected']} tensors were not loaded and stay at their initial values; "
                       f"{o['unexpected']} keys in the file were not used")
            if o["module_prefixed"]:
                summary += f" ({o['module_prefixed']} carry a 'module.' prefix from DataParallel/DDP)"
            if o["differing"]:
                summary += f"; {o['differing']} more hold other values than the file's"
            causes = ("load_state_dict(strict=False) hid a key mismatch", "a checkpoint saved from a "
                      "DataParallel/DDP wrapper ('module.' prefix) or torch.compile ('_orig_mod.')",
                      "the model config differs from the one the checkpoint was trained with")
        else:
            summary = (f"{o['differing']} of {o['expected']} tensors of the network the sampler calls differ from "
                       f"the file's: it does not sample with the weights that were saved")
            causes = ("the weights were loaded into one model object and the sampler calls another (a fresh one)",
                      "the network was re-initialised or modified after loading (an init function, a weight "
                      "transform)", "the online weights were loaded where the EMA weights were meant, or the reverse")
        return Verdict(Status.FAIL, summary, ev, causes)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shape and values (NaN equal to NaN), compared on the CPU in the network's dtype."""
    a, b = a.detach().cpu(), torch.as_tensor(b).detach().cpu()
    return a.shape == b.shape and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b.to(a.dtype)))


class WGT003(Check):
    """The EMA weights the sampler uses denoise as well as the online weights"""

    id = "WGT003"
    explains = frozenset({"LOSS001", "PAR003", "TEMB", "DIST"})
    next_step = ("sample with the online weights to compare; lower the EMA decay or add warm-up, and check that the "
                 "EMA is updated every step and saved after training")
    trained_only = True
    thresholds = _th({"max_loss_ratio": 2.0})

    def measure(self, ema_probe: dict) -> dict[str, Any]:
        if not (np.isfinite(ema_probe["ema_loss"]).all() and np.isfinite(ema_probe["online_loss"]).all()):
            raise Skip("the EMA or the online network's loss is NaN or Inf (see WGT001)")
        ratio = np.asarray(ema_probe["ema_loss"]) / np.maximum(ema_probe["online_loss"], 1e-300)
        return {"loss_ratio": geometric_mean(ratio),
                "ema_loss": float(np.median(ema_probe["ema_loss"])), "online_loss": float(np.median(ema_probe["online_loss"])),
                **{k: ema_probe[k] for k in ("ema_online_distance", "online_from_fresh", "ema_from_fresh")}}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = [f"median loss over the grid: EMA {o['ema_loss']:.3g}, online {o['online_loss']:.3g}",
              f"relative weight distance EMA-online {o['ema_online_distance']:.3g}"]
        if o["ema_from_fresh"] is not None:
            ev.append(f"relative distance from a fresh initialisation: EMA {o['ema_from_fresh']:.3g}, online "
                      f"{o['online_from_fresh']:.3g}")
        if o["loss_ratio"] <= th["max_loss_ratio"]:
            return Verdict(Status.PASS, f"EMA and online weights denoise alike (loss ratio {o['loss_ratio']:.3g} vs "
                           f"<= {th['max_loss_ratio']:g})", tuple(ev))
        return Verdict(Status.FAIL, f"the EMA weights the sampler uses denoise {o['loss_ratio']:.3g}x worse than the online "
                       f"weights (median loss {o['ema_loss']:.3g} vs {o['online_loss']:.3g}; vs <= "
                       f"{th['max_loss_ratio']:g}x)", tuple(ev),
                       ("EMA decay too high for the run length: the EMA still holds its initialisation (see WGT004)",
                        "the EMA was never updated, or updated from another model",
                        "the EMA copy was saved before training or loaded from another run"))


class WGT004(Check):
    """The EMA horizon 1/(1-decay) fits within the steps trained"""

    id = "WGT004"
    explains = frozenset({"WGT003"})
    next_step = ("use an EMA decay whose horizon 1/(1-decay) is well under the steps trained, or warm it up: decay = "
                 "min(decay, (1+step)/(10+step))")
    thresholds = _th({"max_init_weight": 0.05})

    def measure(self, pipeline: Pipeline) -> dict[str, Any]:
        info = pipeline.weights_info()
        if info.ema_decay is None or info.steps is None:
            raise Skip("the pipeline reports no EMA decay and step count (WeightsInfo.ema_decay, .steps)")
        decay, steps = float(info.ema_decay), int(info.steps)
        return {"ema_decay": decay, "steps": steps, "horizon": 1.0 / max(1.0 - decay, 1e-300),
                "init_weight": decay ** steps}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        pair = f"horizon 1/(1-{o['ema_decay']:g}) = {o['horizon']:.4g} steps, {o['steps']} steps trained"
        if o["init_weight"] <= th["max_init_weight"]:
            return Verdict(Status.PASS, f"EMA {pair} (initial weights keep {o['init_weight']:.2g} of the average vs <= "
                           f"{th['max_init_weight']:g})")
        return Verdict(Status.WARN, f"the EMA still holds {o['init_weight']:.0%} of its initial weights ({pair}; vs <= "
                       f"{th['max_init_weight']:.0%}) unless its decay warms up", (),
                       ("EMA decay chosen for a longer run (0.9999 needs ~10^4 steps)",
                        "no EMA warm-up (decay = min(decay, (1+step)/(10+step)))"))


#: Names of schedule tensors as libraries register them, and how to recompute each from alpha_bar.
_SCHEDULE_TENSORS = {
    "betas": lambda s: s.betas, "alphas": lambda s: 1.0 - s.betas,
    "alphas_cumprod": lambda s: s.alpha_bar, "alpha_bar": lambda s: s.alpha_bar, "alphas_bar": lambda s: s.alpha_bar,
    "alphas_cumprod_prev": lambda s: s.alpha_bar_prev(),
    "sqrt_alphas_cumprod": lambda s: s.signal_scale(),
    "sqrt_one_minus_alphas_cumprod": lambda s: s.noise_scale(),
    "sqrt_recip_alphas_cumprod": lambda s: np.sqrt(1.0 / s.alpha_bar),
    "sqrt_recipm1_alphas_cumprod": lambda s: np.sqrt(1.0 / s.alpha_bar - 1.0),
}


class WGT005(Check):
    """Schedule tensors stored with the weights equal the recomputed schedule"""

    id = "WGT005"
    explains = frozenset({"FWD001", "PAR001", "PAR002", "SMP007", "DIST"})
    next_step = ("recompute the schedule tensors from the schedule the checkpoint was trained with instead of "
                 "loading stale buffers from the file, and declare that schedule")
    thresholds = _th({"max_relative_error": 1e-3})

    def measure(self, pipeline: Pipeline) -> dict[str, Any]:
        named = (*pipeline.weights_info().schedule_buffers.items(), *pipeline.network.named_buffers())
        stored = {n: b for n, b in named if n.rsplit(".", 1)[-1] in _SCHEDULE_TENSORS}
        if not stored:
            raise Skip("no schedule tensors are stored with the weights (WeightsInfo.schedule_buffers, network buffers)")
        errors = {name: _relative_error(pipeline, name, tensor) for name, tensor in stored.items()}
        worst = max(errors, key=lambda n: (np.isnan(errors[n]), errors[n]))  # NaN is the worst, never skipped
        return {"tensors": sorted(errors), "errors": errors, "worst": worst, "max_relative_error": errors[worst]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = ("max relative error against the declared schedule: "
              + ", ".join(f"{n} {o['errors'][n]:.2g}" for n in o["tensors"]),)
        if not np.isfinite(o["max_relative_error"]):
            return Verdict(Status.FAIL, f"stored {o['worst']} is not comparable with the declared schedule (relative "
                           f"error {o['max_relative_error']}): NaN/Inf values or another length", ev,
                           ("the buffers were saved from a run with another T", "the stored tensor holds NaN or Inf"))
        if o["max_relative_error"] <= th["max_relative_error"]:
            return Verdict(Status.PASS, f"{len(o['tensors'])} stored schedule tensors match the declared schedule (max "
                           f"relative error {o['max_relative_error']:.2g} vs <= {th['max_relative_error']:g})", ev)
        return Verdict(Status.FAIL, f"stored {o['worst']} differs from the declared schedule by {o['max_relative_error']:.3g} "
                       f"(relative; vs <= {th['max_relative_error']:g})", ev,
                       ("the EMA update averaged the registered schedule buffers too",
                        "the buffers were saved from a run with another schedule, T or beta range",
                        "buffers computed in low precision (fp16)"))


def _relative_error(pipeline: Pipeline, name: str, tensor: torch.Tensor) -> float:
    expected = _SCHEDULE_TENSORS[name.rsplit(".", 1)[-1]](pipeline.schedule)
    got = tensor.detach().double().cpu().numpy().reshape(-1)
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-12)))
