"""Adapters: other libraries' diffusion pipelines behind the :class:`~diffcheck.Pipeline` protocol.

- :mod:`diffcheck.pipelines.adapters.ddp`: denoising-diffusion-pytorch (GaussianDiffusion1D, Trainer1D
  checkpoints); ``pip install 'diffcheck[ddp]' && pip install --no-deps denoising-diffusion-pytorch==2.3.4``.
- :mod:`diffcheck.pipelines.adapters.diffusers`: diffusers schedulers with UNet1DModel or any ``net(x, t)``,
  and saved folders; ``pip install 'diffcheck[diffusers]'``.

Importing this package imports neither library; each adapter imports its library when used.
"""
