"""User-facing errors.

An ``MGMError`` carries one line that says what is wrong, where, and what to do.
The command line prints it as ``error: <message>`` and exits with status 2;
library users catch it like any exception.
"""


class MGMError(Exception):
    """A problem with the user's input that a one-line message can explain."""


class CheckpointError(MGMError):
    """A generator checkpoint is missing, unreadable, unsupported or mis-shaped."""


class UnsafePickleError(CheckpointError):
    """A pickle asked for a global outside the allow-list; it was not loaded."""
