"""Pipelines: the protocol checks talk to (pipeline), the function route for a user's own code
(functions), the adapters for denoising-diffusion-pytorch and diffusers, the reference DDPM, and
what they share: the schedule, the normalisation, the data, and loading from the command line."""
