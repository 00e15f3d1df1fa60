"""Training loop of the reference pipeline (used to build fixtures; small and deterministic)."""

from __future__ import annotations

from typing import Callable

import torch

from diffcheck.pipelines.reference.pipeline import ReferencePipeline

__all__ = ["train", "ema_update"]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, online: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * online, parameters only (never schedule buffers)."""
    for pe, po in zip(ema.parameters(), online.parameters()):
        pe.lerp_(po, 1.0 - decay)


def train(
    pipe: ReferencePipeline,
    x: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 2e-3,
    ema_decay: float = 0.995,
    seed: int = 0,
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``pipe.online`` with the pipeline's own loss and keep ``pipe.network`` as its EMA.

    The EMA warms up as min(decay, (1+step)/(10+step)) so a short run does not leave the EMA
    at its initialisation. Returns the loss per step.
    """
    gen = torch.Generator().manual_seed(seed)
    online, ema = pipe.online.train(), pipe.network
    opt = torch.optim.AdamW(online.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    losses = []
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen)
        with pipe.network_replaced(online):
            loss = pipe.training_loss(x[idx], generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(online.parameters(), 1.0)
        opt.step()
        sched.step()
        ema_update(ema, online, min(ema_decay, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if log is not None:
            log(step, losses[-1])
    online.eval()
    ema.eval()
    return losses
