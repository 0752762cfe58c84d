"""The error make-labels raises for a user's mistake (bad path, bad option, bad annotation file)."""


class UsageError(ValueError):
    """A mistake the user can fix; the CLI prints it as one line and exits with status 2."""
