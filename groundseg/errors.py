"""Errors shared by every layer: one base class, and the usage mistake the CLI maps to exit 2.

Layers raise their own subclasses (``ArchiveError``, ...); the CLI prints one line for any
of them and chooses the exit status by class, not by message.
"""
from __future__ import annotations

__all__ = ["GroundsegError", "UsageError", "UnknownNameError", "InvalidValueError"]


class GroundsegError(Exception):
    """Base of every error groundseg raises on purpose."""


class UsageError(GroundsegError, ValueError):
    """A usage mistake (a name that does not exist, an output directory that does not, a
    level the mission cannot decode): the CLI exits with status 2. Also a ValueError."""


class InvalidValueError(UsageError, ValueError):
    """A value in the wrong form (a time that is not ISO 8601 text); also a ValueError."""


class UnknownNameError(UsageError, KeyError):
    """An APID or field name that does not exist; the message names those that do.
    Also a KeyError, as the read API documented before this class existed."""

    def __str__(self) -> str:
        # KeyError's str() quotes its argument: a message is shown as written
        return str(self.args[0]) if self.args else ""
