"""Where a run writes, and how: nothing lost, nothing half-written, never two runs in one folder.

- :func:`validate_output_paths` checks the report directory, ``--json`` and ``--junit`` before any
  check runs (a file where a folder should be, a folder where a file should be, a folder that cannot
  be written): one :class:`~diffcheck.errors.InputError` line, nothing written.
- :func:`claim` takes the report directory for one run: a lock file holding the run's PID. A live
  holder makes the next run an InputError; a lock left by a dead process is taken over. Folders it
  had to create are removed again if the run leaves them empty.
- :func:`clear_previous` removes the files an earlier run wrote there (those listed in its manifest,
  or the figures named in its report.json); files diffcheck did not write are never touched.
- :func:`atomic_write` writes a file through a temporary file in the same folder and ``os.replace``,
  so a reader sees the old file or the new one, never a partial one.
- :func:`write_manifest` lists what a run wrote there (diffcheck.formats.write_report writes the files).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from diffcheck.errors import InputError

if TYPE_CHECKING:
    from diffcheck.formats.report import Report

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the PID in the lock file alone decides
    fcntl = None

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "validate_output_paths", "claim", "clear_previous", "atomic_write",
           "write_manifest"]

LOCK_NAME = ".diffcheck.lock"
#: The files (relative to the report directory) the last run wrote there; the next run removes them.
MANIFEST_NAME = ".diffcheck-files.json"
_USE = "pass another --report-dir (or report_dir in [tool.diffcheck])"


def validate_output_paths(report_dir: Path, json_path: Path | None, junit: Path | None,
                          extra: Mapping[str, Path] | None = None) -> None:
    """InputError (one line) unless every output path can be written; creates nothing. ``extra`` maps
    a format name to a file (``--output FORMAT=PATH``)."""
    _check_dir(Path(report_dir))
    named = [("--json", json_path, ""), ("--junit", junit, "report.json")]
    named += [(f"--output {fmt}=", path, "" if fmt == "json" else "report.json") for fmt, path in (extra or {}).items()]
    for flag, path, also in named:
        if path is not None:
            _check_clash(Path(path), flag, Path(report_dir), also)
            _check_file(Path(path), flag)


def _check_clash(path: Path, flag: str, report_dir: Path, also: str) -> None:
    """``path`` is neither the report dir nor one of the files diffcheck writes there (but report.json for --json)."""
    taken = {"report.html", MANIFEST_NAME, LOCK_NAME, also} - {""}
    if path.resolve() == report_dir.resolve() or (path.parent.resolve() == report_dir.resolve() and path.name in taken):
        raise InputError(f"{flag} {path} is where diffcheck writes its own report; pass another file path to {flag}")


def _check_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise InputError(f"report dir {path} is a file, not a folder; {_USE}")
    _check_parent(path, f"report dir {path}", _USE)


def _check_file(path: Path, flag: str) -> None:
    advice = f"pass a writable file path to {flag}"
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; {advice}, e.g. {path / 'report.json'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {path} cannot be overwritten (read-only file); {advice}")
    _check_parent(path, f"{flag} {path}", advice)


def _check_parent(path: Path, what: str, advice: str) -> None:
    """The nearest existing folder at or above ``path`` is a folder this process can write in."""
    existing = path if path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{what} lies under {existing}, which is a file; {advice}")
    try:  # a real probe: os.access says yes to root even on a folder that refuses writes
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".diffcheck-probe-")
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {existing} ({exc.strerror or exc}); {advice}") from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def claim(report_dir: Path) -> Iterator[Path]:
    """Hold ``report_dir`` for this run (creating it); InputError if a live run holds it."""
    report_dir = Path(report_dir)
    created = _make_dirs(report_dir)
    try:
        fd = _lock(report_dir / LOCK_NAME)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield report_dir
    finally:
        _unlock(report_dir / LOCK_NAME, fd)
        _remove_empty(created)


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; the ones created, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _lock(path: Path) -> int:
    """An open descriptor on ``path`` holding this run's PID; InputError if another live run holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(fd)
                os.close(fd)
                raise _in_use(path.parent, holder) from None
            if _replaced(fd, path):  # the holder released (and removed) it meanwhile: lock the new file
                os.close(fd)
                continue
        holder = _holder(fd)
        if holder is not None and _alive(holder[0], holder[1]):
            os.close(fd)
            raise _in_use(path.parent, holder)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return fd


def _replaced(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino != os.stat(path).st_ino
    except FileNotFoundError:
        return True


def _holder(fd: int) -> tuple[int, str] | None:
    """(PID, host) written in the lock file, or None if it holds none."""
    os.lseek(fd, 0, os.SEEK_SET)
    words = os.read(fd, 256).decode("utf-8", "replace").split()
    if not words or not words[0].isdigit():
        return None
    return int(words[0]), words[1] if len(words) > 1 else socket.gethostname()


def _alive(pid: int, host: str) -> bool:
    """Whether process ``pid`` runs (a lock from another host counts as live: it cannot be checked)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_use(folder: Path, holder: tuple[int, str] | None) -> InputError:
    who = f"run PID {holder[0]}" if holder else "another run"
    return InputError(f"report dir {folder} is in use by {who}; wait for it to finish or {_USE} "
                      f"(if no run is going on, delete {folder / LOCK_NAME})")


def _unlock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)


def clear_previous(report_dir: Path) -> None:
    """Remove the files the previous run wrote in ``report_dir``; leave every other file alone."""
    report_dir = Path(report_dir)
    root = report_dir.resolve()
    for name in _previous_files(report_dir):
        target = (report_dir / name).resolve()
        if target.is_relative_to(root) and target != root and target.is_file():
            target.unlink()
    with contextlib.suppress(FileNotFoundError):
        (report_dir / MANIFEST_NAME).unlink()


def _previous_files(report_dir: Path) -> list[str]:
    """The manifest's list, else (a report written without one) report.json, report.html and its figures."""
    manifest = _read_json(report_dir / MANIFEST_NAME)
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), list):
        return [f for f in manifest["files"] if isinstance(f, str)]
    report = _read_json(report_dir / "report.json")
    if not isinstance(report, dict):
        return []
    figures = [Path(f).name for r in report.get("results", []) if isinstance(r, dict)
               for f in r.get("figures", []) if isinstance(f, str)]  # figures are saved in the report dir
    return ["report.json", "report.html", *figures]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in its folder: all of it or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_manifest(report: "Report", report_dir: Path, written: Sequence[Path]) -> None:
    """List what this run wrote inside ``report_dir`` (outputs and figures) for the next run to remove."""
    root = report_dir.resolve()
    paths = [*written, *(Path(f) for r in report.results for f in r.figures), *map(Path, report.artifacts)]
    inside = sorted({str(p.resolve().relative_to(root)) for p in paths if p.resolve().is_relative_to(root)})
    atomic_write(report_dir / MANIFEST_NAME, json.dumps({"files": inside}, indent=1) + "\n")
