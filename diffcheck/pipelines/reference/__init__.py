"""The reference pipeline: a known-good 1D U-Net DDPM, diffcheck's first pipeline implementation."""
