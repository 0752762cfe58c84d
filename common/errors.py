"""The one user-error type of every command (printed as one line, exit status 2)."""


class UsageError(ValueError):
    """A user mistake (bad path, bad CSV, bad option): the command prints it on one line and exits 2."""


class MissingFilesError(UsageError):
    """Image files listed in a labels CSV do not exist."""
