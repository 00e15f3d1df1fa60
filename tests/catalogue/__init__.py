"""The catalogue of bad inputs and faults (issue 16): each case one CLI invocation.

Every case asserts the exit code, that stderr holds exactly one non-empty line matching the
case's pattern, that no traceback reached the user, and the state of the report directory
afterwards. Cases live in ``cases_<kind>.py`` modules as a ``CASES`` list; tests/test_catalogue.py
collects them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tests.conftest import HEALTHY_CKPT, TINY_DATA

#: What a case leaves in the report directory ``tmp_path / "rep"``:
#: "absent"    nothing was created (input errors are found before anything is written);
#: "unchanged" a directory that the setup filled keeps exactly its files and contents;
#: "any"       not asserted here (the case's own ``after`` says what must hold).
OUTDIR_STATES = ("absent", "unchanged", "any")


@dataclass(frozen=True)
class Case:
    """One bad input or fault, run as ``diffcheck <args(tmp_path)>`` in ``tmp_path``."""

    id: str
    kind: str
    args: Callable[[Path], Sequence[object]]
    #: regex the single stderr line must match (re.search)
    stderr: str
    exit_code: int = 2
    setup: Callable[[Path], None] | None = None
    outdir: str = "absent"
    #: extra assertions on tmp_path after the run
    after: Callable[[Path], None] | None = None
    #: changes to the environment, ``patch(monkeypatch, tmp_path)``, undone after the case (e.g. a plugin on sys.path)
    patch: Callable[[Any, Path], None] | None = None

    def __post_init__(self) -> None:
        if self.outdir not in OUTDIR_STATES:
            raise ValueError(f"{self.id}: outdir must be one of {OUTDIR_STATES}")


def quick_run(tmp_path: Path, *extra: object, ckpt: object = HEALTHY_CKPT) -> list[object]:
    """``run CKPT --data TINY --device cpu --report-dir rep`` with the cheap families only, plus ``extra``."""
    return ["run", ckpt, "--data", TINY_DATA, "--device", "cpu", "--report-dir", tmp_path / "rep",
            "--select", "FWD001", *extra]
