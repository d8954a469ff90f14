"""Errors the CLI reports as `error: <message>` on stderr, exiting with status 1."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report to the user; the message is printed after `error: `."""


class UsageError(CliError):
    """A mistake in the command line; the verb's help is pointed to after the message."""

    def __init__(self, message: str, verb: str = "") -> None:
        super().__init__(message)
        self.verb = verb


class NotFound(CliError):
    """Something the user named does not exist (messages follow the API server's wording)."""


class PrintedError(CliError):
    """A failure that kubectl also explains on the output: `printed` is written to stdout before the error."""

    def __init__(self, message: str, printed: str) -> None:
        super().__init__(message)
        self.printed = printed
