"""The project's exception base classes.

Every error groundseg raises on purpose derives from :class:`GroundsegError`, so a
caller (the CLI above all) can tell "this input or request is wrong" from a bug.
:class:`UsageError` is a mistake in what was asked (an unknown APID or field, an
archive of another mission, a bad option value): the CLI answers it with one line
and exit status 2, naming what exists.
"""
from __future__ import annotations


class GroundsegError(Exception):
    """Base of every error groundseg raises on purpose."""


class UsageError(GroundsegError, ValueError):
    """A mistake in what was asked; the message names what exists instead."""
