"""diffcheck's built-in checks (installed as ``diffcheck_checks``), one module per family."""

from __future__ import annotations

from .fwd import FWD001, FWD002, FWD003, FWD004, FWD005
from .par import PAR001, PAR002, PAR003, PAR004
from .smp import SMP001, SMP002, SMP003, SMP004, SMP005, SMP006, SMP007
from .temb import TEMB001, TEMB002, TEMB003, TEMB004, TEMB005
from .loss import LOSS001
from .weights import WGT001, WGT002, WGT003, WGT004, WGT005
from .toy import TOY001
from .dist import DIST001, DIST002, DIST003, DIST004, DIST005

#: Built-in checks in report order; third-party checks come from the ``diffcheck.checks`` entry points.
BUILTIN_CHECKS = (
    FWD001, FWD002, FWD003, FWD004, FWD005,
    PAR001, PAR002, PAR003, PAR004,
    SMP001, SMP002, SMP003, SMP004, SMP005, SMP006, SMP007,
    TEMB001, TEMB002, TEMB003, TEMB004, TEMB005,
    LOSS001,
    WGT001, WGT002, WGT003, WGT004, WGT005,
    TOY001,
    DIST001, DIST002, DIST003, DIST004, DIST005,
)

__all__ = ["BUILTIN_CHECKS"]
