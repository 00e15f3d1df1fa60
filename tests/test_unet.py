"""Tests of the reference 1D U-Net (diffcheck.pipelines.reference.unet)."""

from __future__ import annotations

import json

import pytest
import torch

from diffcheck.pipelines.reference.unet import (
    ResBlock1D,
    SelfAttention1D,
    UNet1D,
    UNetConfig,
    sinusoidal_embedding,
)

TINY = UNetConfig(channels=(8, 16, 32, 64), blocks_per_level=1, groups=4)


def _tiny(seed: int = 0) -> UNet1D:
    torch.manual_seed(seed)
    return UNet1D(TINY).eval()


def _x(length: int = 256, batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, TINY.in_channels, length, generator=g)


def _t(value: float, batch: int = 2, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.full((batch,), value, dtype=dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("length", [256, 4096])
def test_output_shape_equals_input_shape(length: int) -> None:
    net = _tiny()
    x = _x(length)
    with torch.no_grad():
        y = net(x, torch.tensor([3, 700]))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_default_parameter_count() -> None:
    n = _n_params(UNet1D(UNetConfig()))
    print(f"default UNet1D parameters: {n:,}; tiny: {_n_params(_tiny()):,}")
    assert 5_000_000 <= n <= 6_800_000


def test_output_depends_on_t() -> None:
    net, x = _tiny(), _x()
    with torch.no_grad():
        y10, y900 = net(x, _t(10)), net(x, _t(900))
    assert _rel(y10, y900) >= 1e-3


def _res_blocks(net: UNet1D) -> list[tuple[str, ResBlock1D]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, ResBlock1D)]


def test_every_res_block_receives_t() -> None:
    """Freezing one block's time projection at t=10 changes f(x, 900): t acts through each block."""
    net, x = _tiny(), _x()
    blocks = _res_blocks(net)
    assert {n.split(".")[0] for n, _ in blocks} == {"down", "mid1", "mid2", "up"}
    frozen: dict[str, torch.Tensor] = {}
    hooks = [b.time_proj.register_forward_hook(
        lambda mod, inp, out, name=name: frozen.__setitem__(name, out.detach())) for name, b in blocks]
    with torch.no_grad():
        net(x, _t(10))  # records each block's time projection at t=10
    for h in hooks:
        h.remove()
    with torch.no_grad():
        ref = net(x, _t(900))
    assert set(frozen) == {n for n, _ in blocks}
    for name, block in blocks:
        hook = block.time_proj.register_forward_hook(lambda mod, inp, out, name=name: frozen[name])
        with torch.no_grad():
            y = net(x, _t(900))
        hook.remove()
        assert _rel(y, ref) > 1e-6, f"{name}: output does not depend on t through this block"


def test_zeroing_time_projection_changes_output() -> None:
    net, x, t = _tiny(), _x(), _t(500)
    with torch.no_grad():
        ref = net(x, t)
        for name, block in _res_blocks(net):
            saved = [p.clone() for p in block.time_proj.parameters()]
            for p in block.time_proj.parameters():
                p.zero_()
            assert _rel(net(x, t), ref) > 1e-6, name
            for p, s in zip(block.time_proj.parameters(), saved):
                p.copy_(s)


def test_t_dtype_float_and_int_agree_and_no_truncation() -> None:
    net, x = _tiny(), _x()
    with torch.no_grad():
        y_float = net(x, _t(10.0))
        y_int = net(x, _t(10, dtype=torch.int64))
        y_f64 = net(x, _t(10, dtype=torch.float64))
        y_half_step = net(x, _t(10.5))
    assert torch.equal(y_float, y_int)
    assert torch.equal(y_float, y_f64)
    assert _rel(y_half_step, y_float) > 1e-6


def test_sinusoidal_embedding() -> None:
    e = sinusoidal_embedding(torch.tensor([0, 10]), 16, 10000.0)
    assert e.shape == (2, 16)
    assert torch.equal(e[0], torch.cat([torch.ones(8), torch.zeros(8)]))
    assert torch.allclose(e[1, 0], torch.cos(torch.tensor(10.0)))
    assert not torch.equal(sinusoidal_embedding(torch.tensor([10.5]), 16), e[1:])
    with pytest.raises(ValueError, match="dim"):
        sinusoidal_embedding(torch.tensor([1]), 7)


def test_attention_only_at_lowest_resolution() -> None:
    net, length = _tiny(), 256
    seen: list[tuple[str, int, int]] = []
    attn = [(n, m) for n, m in net.named_modules() if isinstance(m, SelfAttention1D)]
    for name, m in attn:
        m.register_forward_hook(lambda mod, inp, out, name=name: seen.append((name, *inp[0].shape[1:])))
    with torch.no_grad():
        net(_x(length), _t(1))
    low = len(TINY.channels) - 1
    n = TINY.blocks_per_level
    assert len(attn) == n + 1 + (n + 1)  # down lowest level, middle, up lowest level
    assert len(seen) == len(attn)
    for name, ch, ln in seen:
        assert (ch, ln) == (TINY.channels[-1], length // TINY.length_divisor), name
        assert name == "mid_attn" or name.startswith((f"down.{low}.", f"up.{low}.")), name
    mha = [n for n, m in net.named_modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert not mha


def test_config_round_trip() -> None:
    cfg = UNetConfig(channels=(8, 16, 32), blocks_per_level=3, time_dim=40, dropout=0.1)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert UNetConfig.from_dict(d) == cfg
    assert UNetConfig.from_dict(UNetConfig().to_dict()) == UNetConfig()
    with pytest.raises(ValueError, match="bogus"):
        UNetConfig.from_dict({**d, "bogus": 1})


@pytest.mark.parametrize("kwargs, field", [
    ({"groups": 3}, "groups"),
    ({"channels": (8, 12)}, "groups"),
    ({"channels": ()}, "channels"),
    ({"blocks_per_level": 0}, "blocks_per_level"),
    ({"attention_heads": 3}, "attention_heads"),
    ({"dropout": 1.5}, "dropout"),
    ({"time_dim": -1}, "time_dim"),
])
def test_invalid_config_raises(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        UNetConfig(**kwargs)


def test_bad_input_length_raises() -> None:
    with pytest.raises(ValueError, match=r"100.*8"):
        _tiny()(_x(100), _t(1))


def test_deterministic_with_seed() -> None:
    a, b = _tiny(seed=7), _tiny(seed=7)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    x, t = _x(), _t(42)
    with torch.no_grad():
        assert torch.equal(a(x, t), b(x, t))
    assert not torch.equal(_tiny(seed=8).out_conv.weight, a.out_conv.weight)
