"""Errors that reach the user as one line: a mistake in the request (exit 2), or a fault of
the machine the build can be resumed from (exit 1)."""


class UserError(Exception):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""


class Fault(Exception):
    """The machine failed the build (a full disk): nothing valid is lost and ``--resume``
    finishes it once the cause is fixed; the CLI prints it as one line and exits 1."""


class DiskFull(Fault):
    """No space left for a file; ``needed``: the bytes it needed."""

    def __init__(self, path, needed: int, message: str | None = None):
        self.path, self.needed = path, needed
        super().__init__(message or f"no space left on the device for {path} "
                         f"({mb(needed)} needed)")


def mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"
