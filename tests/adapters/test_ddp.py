"""denoising-diffusion-pytorch: Trainer1D checkpoints through the documented file, the library's own code."""

from __future__ import annotations

import ast

import pytest
import torch

from diffcheck.errors import InputError, Skip
from diffcheck.pipelines.loading import load_pipeline
from tests.adapters._helpers import TRAINER1D_CKPT, TRAINER1D_EXAMPLE, invoke, needs_ddp, one_line_error
from tests.conftest import TINY_DATA
from tests.pipeline_contract import PipelineContract

pytestmark = needs_ddp
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def example():
    return load_pipeline(TRAINER1D_CKPT, device=CPU, pipeline=f"{TRAINER1D_EXAMPLE}:build")


def test_the_documented_file_is_about_ten_lines_of_code():
    tree = ast.parse(TRAINER1D_EXAMPLE.read_text())
    code_lines = {n.lineno for n in ast.walk(tree) if isinstance(n, ast.stmt) and not
                  (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))}  # docstrings excluded
    assert len(code_lines) <= 12, sorted(code_lines)


def test_objective_schedule_and_weights_are_read_from_the_object_and_checkpoint(example):
    d = example.describe()
    assert (d["objective"], d["checkpoint_objective"], d["sampler"], d["schedule"]) == \
        ("pred_noise", "pred_noise", "ddim 100 steps, eta 1", "cosine")
    assert d["weights"] == "ema" and d["step"] > 0 and d["library_version"].startswith("2.")
    info = example.weights_info()
    assert info.online is not None and info.online is not example.network and info.ema_decay == 0.995
    assert set(info.schedule_buffers) == {"betas", "alphas_cumprod"}
    ema, online = (torch.cat([p.flatten() for p in m.parameters()]) for m in (example.network, info.online))
    assert not torch.equal(ema, online)


def test_online_weights_on_request(example):
    from diffcheck.pipelines.adapters.ddp import from_trainer1d

    online = from_trainer1d(TRAINER1D_CKPT, example.factory, weights="online")
    for a, b in zip(online.network.parameters(), example.weights_info().online.parameters()):
        assert torch.equal(a, b)
    assert online.weights_info().online is None  # the sampled network is the online one: no EMA pair


def _ancestral():
    from diffcheck.pipelines.adapters.ddp import DDPPipeline, GaussianDiffusion1D, Unet1D

    torch.manual_seed(0)
    return DDPPipeline(GaussianDiffusion1D(Unet1D(dim=8, dim_mults=(1, 2), channels=1), seq_length=64, timesteps=50))


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_the_sampler_is_the_librarys_seeded_and_traced(example, sampler):
    pipe = example if sampler == "ddim" else _ancestral()
    expected = list(range(999, 8, -10)) if sampler == "ddim" else list(range(49, -1, -1))
    steps = []
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with torch.no_grad():
        a = pipe.sample(2, generator=g(), callback=lambda s: steps.append((s["t"], s["x0_hat"] is not None)))
        b = pipe.sample(2, generator=g())
    assert torch.equal(a, b) and a.shape == (2, *pipe.sample_shape)
    assert [t for t, _ in steps] == expected and all(has for _, has in steps)
    assert float(a.abs().max()) <= 1.0 + 1e-6  # the library clips x0; samples are in the network's space


def test_training_loss_is_the_librarys_p_losses_with_diffcheck_draws(example):
    x0 = torch.rand(4, 1, 512) * 2 - 1
    loss = lambda: example.training_loss(x0, generator=torch.Generator().manual_seed(1))  # noqa: E731
    with torch.no_grad():
        assert float(loss()) == float(loss())
        t, noise = torch.tensor([5, 500, 900, 999]), torch.randn(4, 1, 512)
        per = example.training_loss_at(x0, t, noise)
        assert per.shape == (4,)
        expected = ((example.network(example.q_sample(x0, t, noise), t) - noise) ** 2).mean(dim=(1, 2))
        torch.testing.assert_close(per, expected)


def test_make_network_is_fresh_from_the_factory(example):
    fresh = example.make_network()
    assert type(fresh) is type(example.network)
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in example.network.parameters())
    assert not torch.equal(next(fresh.parameters()), next(example.network.parameters()))


def test_an_object_without_factory_skips_make_network(example):
    from diffcheck.pipelines.adapters.ddp import DDPPipeline

    with pytest.raises(Skip, match="needs the GaussianDiffusion1D factory"):
        DDPPipeline(example.diffusion).make_network()


def test_a_wrong_architecture_is_one_line_naming_the_keys():
    from diffcheck.pipelines.adapters.ddp import GaussianDiffusion1D, Unet1D, from_trainer1d

    wrong = lambda: GaussianDiffusion1D(Unet1D(dim=16, dim_mults=(1, 2), channels=1), seq_length=512)  # noqa: E731
    with pytest.raises(InputError, match=r"the ema weights do not fit your GaussianDiffusion1D: \d+ missing .*"
                                         r"with another shape .*arguments of the training script"):
        from_trainer1d(TRAINER1D_CKPT, wrong)


def test_the_documented_file_gives_the_full_report_from_the_cli(tmp_path):
    code, out = invoke("run", TRAINER1D_CKPT, "--pipeline", f"{TRAINER1D_EXAMPLE}:build", "--data", TINY_DATA,
                       "--select", "FWD,PAR,SMP", "--device", "cpu", "--report-dir", tmp_path)
    assert code == 0, out
    assert "PAR004  all agree on eps" in out and "denoising-diffusion-pytorch GaussianDiffusion1D" in out


@pytest.mark.parametrize("beta_schedule, status", [("cosine", "PASS"), ("linear", "FAIL")])
def test_WGT005_compares_the_stored_buffers_with_the_constructor_not_with_themselves(example, beta_schedule, status):
    """The checkpoint was trained with cosine betas (Trainer1D's default): a constructor declaring linear
    loads the cosine buffers over its own, and WGT005 must say so (it once compared the buffers with
    the schedule read back from the same buffers, error exactly 0)."""
    import diffcheck
    from diffcheck.pipelines.adapters.ddp import GaussianDiffusion1D, from_trainer1d

    def declared():
        base = example.factory()
        return GaussianDiffusion1D(base.model, seq_length=512, timesteps=1000, sampling_timesteps=100,
                                   ddim_sampling_eta=1.0, objective="pred_noise", beta_schedule=beta_schedule)

    pipe = from_trainer1d(TRAINER1D_CKPT, declared, ema_decay=0.995)
    assert pipe.describe()["schedule"] == beta_schedule  # what the user declared, not what the file holds
    result = diffcheck.run_checks(pipe, select=["WGT005"])["WGT005"]
    assert result.status.value == status, result.message()
    if status == "FAIL":
        assert result.observed["max_relative_error"] > 0.5
        assert result.summary.startswith(f"stored {result.observed['worst']} differs from the declared schedule by ")


class TestTrainer1DContract(PipelineContract):
    """The shared pipeline contract on the documented Trainer1D file (DDIM-100 on the library's objects)."""

    @staticmethod
    def build():
        return load_pipeline(TRAINER1D_CKPT, device=CPU, pipeline=f"{TRAINER1D_EXAMPLE}:build")


class TestGaussianDiffusion1DContract(PipelineContract):
    """The shared pipeline contract on a bare GaussianDiffusion1D object (ancestral, no factory)."""

    @staticmethod
    def build():
        return _ancestral()
