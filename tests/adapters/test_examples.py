"""The documented --pipeline examples: the home-made DDPM runs from fresh weights and from its checkpoint;
the README shows the Trainer1D file as it is (tests/adapters/test_ddp.py runs it)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

import diffcheck

from diffcheck.pipelines.loading import load_pipeline
from tests.adapters._helpers import HOMEMADE_EXAMPLE, TRAINER1D_EXAMPLE, invoke
from tests.conftest import ROOT
from tests.pipeline_contract import PipelineContract

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
    example.save(*example.load(None), str(ckpt))
    loaded = load_pipeline(ckpt, device=torch.device("cpu"), pipeline=SPEC)
    for a, b in zip(loaded.network.parameters(), example.build(None).network.parameters()):
        assert torch.equal(a, b)
    code, out = invoke("run", ckpt, "--pipeline", SPEC, "--select", "PAR003", "--device", "cpu",
                       "--report-dir", tmp_path / "rep")
    assert code == 1 and "PAR003  the network fits no parameterisation clearly" in out, out


def test_the_readme_shows_the_trainer1d_file_as_it_is():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*denoising-diffusion-pytorch\*\*.*?```python\n(.*?)```", readme, re.S).group(1)
    source = TRAINER1D_EXAMPLE.read_text()
    assert block == source[source.index('"""\n', 3) + 4:]  # the file without its module docstring


class TestHomemadeContract(PipelineContract):
    """The shared pipeline contract on the home-made example's own DDPM (small: T=50, 64 px)."""

    @staticmethod
    def build():
        example = _example()
        torch.manual_seed(0)
        return example.pipeline(example.DDPM(example.UNet1D(width=8), length=64, T=50), diffcheck.Normaliser())
