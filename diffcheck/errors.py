"""Errors diffcheck reports to the user as one line (exit code 2), never as a traceback."""

from __future__ import annotations

import enum


class InputError(Exception):
    """Bad user input (file, format, option); the message is one line that stands alone."""


class CheckDefinitionError(Exception):
    """A check class (built-in or plugin) is malformed; the message names the culprit."""


class Skip(Exception):
    """Raised by a fixture or check when it cannot apply; the message is the reason shown."""


class ExitCode(enum.IntEnum):
    """Exit codes of ``diffcheck run``; CI systems gate on them."""

    #: Every selected check passed (or warned, or was skipped).
    OK = 0
    #: At least one check failed and none errored.
    CHECK_FAILED = 1
    #: Bad usage or input: missing file, unknown format, bad option, no check selected.
    USAGE_ERROR = 2
    #: At least one check raised (an ERROR result): the verdict is incomplete.
    CHECK_ERRORED = 3
    #: The run was interrupted (Ctrl-C, SIGINT); the report holds the checks that finished.
    INTERRUPTED = 130
