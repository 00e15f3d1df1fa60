"""Format detection and safe loading: what `diffcheck run CKPT` does without --pipeline."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
import torch

from diffcheck.pipelines.adapters.ddp import DDPPipeline
from diffcheck.pipelines.adapters.diffusers import DiffusersPipeline
from diffcheck.errors import InputError
from diffcheck.pipelines.loading import load_pipeline, read_torch_file, trusted_checkpoints
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.adapters._helpers import (LIBRARIES, TRAINER1D_CKPT, invoke, needs_ddp, needs_diffusers,
                                     one_line_error)
from tests.conftest import HEALTHY_CKPT, ROOT

CPU = torch.device("cpu")


def test_diffcheck_format_is_detected():
    assert isinstance(load_pipeline(HEALTHY_CKPT, device=CPU), ReferencePipeline)


@needs_diffusers
def test_a_diffusers_folder_needs_no_pipeline_file():
    pipe = load_pipeline(LIBRARIES / "diffusers_ddim50_leading", device=CPU)
    assert isinstance(pipe, DiffusersPipeline)
    d = pipe.describe()
    assert (d["scheduler"], d["prediction_type"], d["timestep_spacing"], d["num_inference_steps"]) == \
        ("DDIMScheduler", "epsilon", "leading", 50)
    assert pipe.normaliser.kind == "global_minmax" and pipe.sample_shape == (1, 512)


@needs_ddp
def test_a_trainer1d_checkpoint_asks_for_the_ten_line_file(tmp_path):
    code, out = invoke("run", TRAINER1D_CKPT, "--device", "cpu", "--report-dir", tmp_path)
    assert code == 2
    line = one_line_error(out)
    assert re.search(r"is a denoising-diffusion-pytorch Trainer1D checkpoint \(step \d+, version 2\.\d+\.\d+, "
                     r"T=1000, trained with objective pred_noise, Unet1D dim 16, 1 input channel", line), line
    assert "copy examples/trainer1d_pipeline.py" in line
    assert line.endswith(f"--pipeline trainer1d_pipeline.py:build"), line


def test_an_unknown_format_says_exactly_what_to_write(tmp_path):
    ckpt = tmp_path / "mine.pt"
    torch.save({"net": {"w": torch.zeros(2)}, "epoch": 3}, ckpt)
    code, out = invoke("run", ckpt, "--device", "cpu", "--report-dir", tmp_path / "rep")
    line = one_line_error(out)
    assert code == 2 and "a dict with keys [epoch, net]" in line
    assert "examples/homemade_pipeline.py" in line
    assert line.endswith(f"diffcheck run {ckpt} --pipeline my_pipeline.py:build"), line


def test_a_folder_that_is_not_a_diffusers_pipeline_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a folder but not a saved diffusers pipeline"):
        load_pipeline(tmp_path, device=CPU)


def _pickled_checkpoint(tmp_path):
    ckpt = tmp_path / "pickled.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1e-3)}, ckpt)
    return ckpt


def test_a_checkpoint_that_needs_unpickling_is_refused_with_the_flag_to_pass(tmp_path):
    code, out = invoke("run", _pickled_checkpoint(tmp_path), "--device", "cpu", "--report-dir", tmp_path / "r")
    line = one_line_error(out)
    assert code == 2 and "refusing to load" in line and "argparse.Namespace" in line
    assert line.endswith("if you trust where the file comes from, pass --trust-checkpoint"), line


def test_trust_checkpoint_reads_it(tmp_path):
    ckpt = _pickled_checkpoint(tmp_path)
    with pytest.raises(InputError):
        read_torch_file(ckpt)
    with trusted_checkpoints():
        assert read_torch_file(ckpt)["args"].lr == 1e-3
    assert read_torch_file(ckpt, trust=True)["args"].lr == 1e-3
    # trusted, it is read, and then judged by its content: an unknown format
    code, out = invoke("run", ckpt, "--trust-checkpoint", "--device", "cpu", "--report-dir", tmp_path / "r")
    assert code == 2 and "unknown checkpoint format" in one_line_error(out)


@needs_ddp
def test_a_whole_gaussian_diffusion_1d_loads_only_when_trusted(tmp_path):
    from diffcheck.pipelines.adapters.ddp import GaussianDiffusion1D, Unet1D

    ckpt = tmp_path / "whole.pt"
    torch.save(GaussianDiffusion1D(Unet1D(dim=8, dim_mults=(1, 2), channels=1), seq_length=64, timesteps=100), ckpt)
    with pytest.raises(InputError, match="pass --trust-checkpoint"):
        load_pipeline(ckpt, device=CPU)
    pipe = load_pipeline(ckpt, device=CPU, trust_checkpoint=True)
    assert isinstance(pipe, DDPPipeline) and pipe.schedule.name == "cosine" and pipe.sample_shape == (1, 64)
    code, out = invoke("preflight", ckpt, "--trust-checkpoint", "--select", "FWD,PAR001,PAR002", "--device", "cpu",
                       "--report-dir", tmp_path / "r")
    assert code == 0, out


def test_the_core_imports_neither_library():
    code = ("import sys, diffcheck, diffcheck.cli, diffcheck.pipelines.loading, diffcheck.pipelines.adapters, diffcheck.pipelines.adapters.ddp, "
            "diffcheck.pipelines.adapters.diffusers; from diffcheck.pipelines.loading import load_pipeline; import torch; "
            f"load_pipeline({str(HEALTHY_CKPT)!r}, device=torch.device('cpu')); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('diffusers', 'denoising_diffusion_pytorch')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_missing_extra_names_the_install_line():
    from diffcheck.pipelines.adapters._imports import require

    with pytest.raises(InputError, match=r"pip install 'diffcheck\[diffusers\]'"):
        require("diffcheck_no_such_module", "diffusers")

