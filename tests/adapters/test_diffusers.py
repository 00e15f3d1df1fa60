"""diffusers: schedulers with their prediction_type and timestep_spacing, saved folders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from diffcheck.errors import InputError, Skip
from diffcheck.pipelines.loading import load_pipeline
from tests.adapters._helpers import LIBRARIES, diffusers_variant, needs_diffusers
from tests.pipeline_contract import PipelineContract

pytestmark = needs_diffusers
CPU = torch.device("cpu")


def _load(name: str):
    return load_pipeline(LIBRARIES / name, device=CPU)


@pytest.mark.parametrize(("folder", "first", "last", "steps"), [
    ("diffusers_ddpm", 999, 0, 1000),
    ("diffusers_ddim50_leading", 980, 0, 50),
    ("diffusers_cosine_ddim50_trailing", 999, 19, 50),
    ("diffusers_cosine_ddim10_leading", 900, 0, 10),
], ids=["ddpm", "ddim50-leading", "cosine-ddim50-trailing", "cosine-ddim10-leading"])
def test_the_sampler_is_the_schedulers_loop_with_its_spacing(folder, first, last, steps):
    pipe, ts = _load(folder), []
    with torch.no_grad():
        x = pipe.sample(1, generator=torch.Generator().manual_seed(0), callback=lambda s: ts.append(s["t"]))
    assert (ts[0], ts[-1], len(ts)) == (first, last, steps) and torch.isfinite(x).all()


def test_the_forward_process_is_add_noise_and_the_schedule_its_betas():
    from diffusers import DDPMScheduler

    pipe = _load("diffusers_ddpm")
    reference = DDPMScheduler.from_pretrained(LIBRARIES / "diffusers_ddpm" / "scheduler")
    x0, noise, t = torch.rand(3, 1, 512), torch.randn(3, 1, 512), torch.tensor([0, 400, 999])
    torch.testing.assert_close(pipe.q_sample(x0, t, noise), reference.add_noise(x0, noise, t))
    assert pipe.schedule.name == "linear" and pipe.schedule.T == 1000
    torch.testing.assert_close(torch.as_tensor(pipe.schedule.alpha_bar), reference.alphas_cumprod.double(),
                               rtol=1e-5, atol=1e-6)


def test_there_is_no_training_loss_and_the_reason_says_so():
    pipe = _load("diffusers_ddpm")
    with pytest.raises(Skip, match="diffusers has no training loss"):
        pipe.training_loss(torch.zeros(1, 1, 512))


def test_denoise_is_the_schedulers_x0_prediction():
    pipe = _load("diffusers_v_mismatch")  # v_prediction: x0 = a x_t - s v
    x_t, t = torch.randn(2, 1, 512), torch.tensor([100, 700])
    with torch.no_grad():
        out = pipe.network(x_t, t)
        a = torch.as_tensor(pipe.schedule.signal_scale(), dtype=torch.float32)[t].view(-1, 1, 1)
        s = torch.as_tensor(pipe.schedule.noise_scale(), dtype=torch.float32)[t].view(-1, 1, 1)
        torch.testing.assert_close(pipe.denoise(x_t, t), (a * x_t - s * out).clamp(-1, 1), rtol=1e-4, atol=1e-4)


def test_make_network_is_a_fresh_unet_of_the_same_config():
    pipe = _load("diffusers_ddim50_leading")
    fresh = pipe.make_network()
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in pipe.network.parameters())
    x, t = torch.randn(1, 1, 512), torch.tensor([10])
    with torch.no_grad():
        assert fresh(x, t).shape == x.shape and not torch.equal(fresh(x, t), pipe.network(x, t))


def test_the_load_report_is_strict():
    info = _load("diffusers_ddpm").weights_info()
    assert info.missing_keys == () and info.unexpected_keys == ()


def test_the_sidecar_is_optional_and_validated(tmp_path):
    folder = tmp_path / "f"
    shutil.copytree(LIBRARIES / "diffusers_ddim50_leading", folder)
    (folder / "diffcheck.json").unlink()
    pipe = load_pipeline(folder, device=CPU)
    assert pipe.steps == 50 and pipe.normaliser.kind == "identity"  # DDIMPipeline's default step count
    (folder / "diffcheck.json").write_text(json.dumps({"steps": 10}))
    with pytest.raises(InputError, match="unknown keys steps; known: data_source, eta, normalisation, "
                                         "num_inference_steps"):
        load_pipeline(folder, device=CPU)


def test_only_diffusers_classes_are_instantiated(tmp_path):
    folder = tmp_path / "f"
    shutil.copytree(LIBRARIES / "diffusers_ddpm", folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_class_name": "os.system"}))
    with pytest.raises(InputError, match="names 'os.system', which is not a diffusers class"):
        load_pipeline(folder, device=CPU)


@pytest.mark.parametrize(("folder", "changes", "decoded"), [
    # stochastic DDIM: read as v, an eps oracle lands within 10x of the v one (every sampler's last
    # steps barely tell eps from v); the trajectory mean tells them apart
    ("diffusers_v_mismatch", {"eta": 1.0}, "v"),
    ("diffusers_ddim50_leading", {"eta": 1.0}, "eps"),
    # DDPM with sigma^2 = beta adds more than the posterior noise: the spread is off by design, the mean is not
    ("diffusers_ddpm", {"variance_type": "fixed_large"}, "eps"),
    ("diffusers_ddpm", {"variance_type": "fixed_large", "prediction_type": "v_prediction"}, "v"),
], ids=["ddim-eta1-v", "ddim-eta1-eps", "ddpm-fixed-large-eps", "ddpm-fixed-large-v"])
def test_PAR002_identifies_the_decoding_of_stochastic_and_noisier_samplers(tmp_path, folder, changes, decoded):
    import diffcheck

    pipe = load_pipeline(diffusers_variant(tmp_path, folder, **changes), device=CPU)
    result = diffcheck.run_checks(pipe, select=["PAR002"], seed=0)["PAR002"]
    assert result.status is diffcheck.Status.PASS, result.message()
    assert (result.observed["identified"], result.observed["identified_by"]) == (decoded, "mean")
    assert result.observed["error_ratio"] > result.thresholds["max_error_ratio"]  # the landing alone cannot tell
    wrong = min(result.observed[f"mean_z_{k}"] for k in ("eps", "x0", "v") if k != decoded)
    assert result.observed[f"mean_z_{decoded}"] < 4.5 and wrong > 9, result.observed


class TestDiffusersContract(PipelineContract):
    """The shared pipeline contract on a saved diffusers folder (DDIM-50, leading spacing)."""

    @staticmethod
    def build():
        return _load("diffusers_ddim50_leading")
