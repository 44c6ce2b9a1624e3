"""User-facing errors.

An ``MGMError`` carries one line that says what is wrong, where, and what to do.
The command line prints it as ``error: <message>`` and exits with status 2;
library users catch it like any exception.
"""

from __future__ import annotations

import os
from pathlib import Path


class MGMError(Exception):
    """A problem with the user's input that a one-line message can explain."""


class CheckpointError(MGMError):
    """A generator checkpoint is missing, unreadable, unsupported or mis-shaped."""


class UnsafePickleError(CheckpointError):
    """A pickle asked for a global outside the allow-list; it was not loaded."""


class RunReadError(MGMError):
    """A run folder is corrupt, half-written or not a run."""


class SchemaError(MGMError):
    """run.json or a run's array does not fit the schema (one line: which field, what was found)."""


class SearchStopped(Exception):
    """A search's ``stop`` predicate said stop (a cancel): raised where the search polls it, handled inside
    :func:`mgm_analysis.discovery.discover`, which returns what it had (status ``interrupted``)."""


class RunInterrupted(KeyboardInterrupt):
    """A signal stopped a job after its run was saved (status ``interrupted``); ``path`` is the run folder (or,
    for a run made in memory, the run itself)."""

    def __init__(self, path, signum: int):
        super().__init__(f"{getattr(path, 'run_id', path)} interrupted by signal {signum}")
        self.path = Path(path) if isinstance(path, (str, os.PathLike)) else path
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
