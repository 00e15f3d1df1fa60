"""The documented --pipeline example for a home-made DDPM runs, from fresh weights and from its checkpoint."""

from __future__ import annotations

import importlib.util

import torch

from diffcheck.loading import load_pipeline
from tests.adapters._helpers import HOMEMADE_EXAMPLE, invoke

SPEC = f"{HOMEMADE_EXAMPLE}:build"


def _example():
    spec = importlib.util.spec_from_file_location("homemade_example", HOMEMADE_EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preflight_of_the_homemade_pipeline_passes(tmp_path):
    code, out = invoke("preflight", "--pipeline", SPEC, "--select", "FWD,PAR,SMP", "--device", "cpu",
                       "--report-dir", tmp_path)
    assert code == 0, out
    assert "PAR004  all agree on eps" in out and "SMP001  starts at t=999" in out


def test_its_checkpoint_round_trips_and_untrained_weights_fail_the_learned_checks(tmp_path):
    example, ckpt = _example(), tmp_path / "homemade.pt"
    example.save(example.build(None), str(ckpt))
    loaded = load_pipeline(ckpt, device=torch.device("cpu"), pipeline=SPEC)
    for a, b in zip(loaded.network.parameters(), example.build(None).network.parameters()):
        assert torch.equal(a, b)
    code, out = invoke("run", ckpt, "--pipeline", SPEC, "--select", "PAR003", "--device", "cpu",
                       "--report-dir", tmp_path / "rep")
    assert code == 1 and "PAR003  the network fits no parameterisation clearly" in out, out
