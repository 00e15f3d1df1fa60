"""diffcheck's built-in checks (installed as ``diffcheck_checks``), one module per family."""

from __future__ import annotations

from .fwd import FWD001, FWD002, FWD003, FWD004, FWD005

#: Built-in checks in report order; third-party checks come from the ``diffcheck.checks`` entry points.
BUILTIN_CHECKS = (FWD001, FWD002, FWD003, FWD004, FWD005)

__all__ = ["BUILTIN_CHECKS"]
