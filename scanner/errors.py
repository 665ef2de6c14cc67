"""The one base class of every error a user can cause (exit code 2, a one-line message).

Bad arguments, a missing path, a broken configuration or baseline, a bad exclude
pattern, a path that is not a repository: each module raises its own subclass,
and the command line tells them from bugs with one ``isinstance``.
"""

from __future__ import annotations


class ScanError(Exception):
    """A user-caused error; ``str(error)`` is the one line shown after ``error:``."""


class UsageError(ScanError):
    """Bad arguments or an unusable combination of options."""
