"""Import the optional libraries the adapters wrap, with one clear error when one is missing."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from diffcheck.errors import InputError
from diffcheck.text import first_line

__all__ = ["require", "ddp1d", "DDP_INSTALL"]

_DDP_PACKAGE = "denoising_diffusion_pytorch"
_DDP_1D = f"{_DDP_PACKAGE}.denoising_diffusion_pytorch_1d"
#: The package's own requirements (torchvision, pytorch-fid) would replace the installed torch.
DDP_INSTALL = "pip install 'diffcheck[ddp]' && pip install --no-deps denoising-diffusion-pytorch==2.3.4"


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; InputError naming the ``pip install diffcheck[extra]`` line when it is absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(f"this needs {module.split('.')[0]}, which is not importable ({exc}); "
                         f"install it with: pip install 'diffcheck[{extra}]'") from None


def ddp1d() -> ModuleType:
    """denoising-diffusion-pytorch's 1D module (Unet1D, GaussianDiffusion1D, Trainer1D).

    The package's ``__init__`` imports its 2D code, which needs torchvision (and pytorch-fid);
    the 1D module needs neither. Where the package import fails there (torchvision absent, or
    built for another torch: "operator torchvision::nms does not exist"), the 1D module is loaded
    from the installed package's own files without running that ``__init__``.
    """
    if _DDP_1D in sys.modules:
        return sys.modules[_DDP_1D]
    if importlib.util.find_spec(_DDP_PACKAGE) is None:
        raise InputError(f"{_DDP_PACKAGE} is not installed; install it with: {DDP_INSTALL}")
    try:
        return importlib.import_module(_DDP_1D)
    except (ImportError, RuntimeError, OSError) as exc:
        package_error = exc
    spec = importlib.util.find_spec(_DDP_PACKAGE)
    sys.modules[_DDP_PACKAGE] = importlib.util.module_from_spec(spec)  # its path, not its __init__
    try:
        return importlib.import_module(_DDP_1D)
    except ImportError as exc:
        del sys.modules[_DDP_PACKAGE]
        raise InputError(f"denoising-diffusion-pytorch's 1D module is not importable ({exc}; the package: "
                         f"{first_line(package_error, 160)}); install it with: {DDP_INSTALL}") from None
