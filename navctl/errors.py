"""Errors that mean "the user asked for something that cannot be done" (exit status 2)."""
from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the command line or a config file; the message names what and where.

    The command line prints the message without a traceback and exits with status 2.
    """
