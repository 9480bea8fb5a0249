"""Errors that reach the user as one line and exit code 2 (bad flag, missing path, ...)."""


class UserError(Exception):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""
