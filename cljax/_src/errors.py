"""Errors shared by the layers."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input to a subcommand, found before any work.

    ``cljax`` prints it as one line on stderr (``cljax <command>: error: <message>``), with no
    traceback, and exits with status 2.  The message names the option or file.
    """
