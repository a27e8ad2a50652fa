"""Exceptions that the command line turns into a message and exit status 2."""


class InputError(ValueError):
    """Input that cannot be read: a missing file, a corrupt record, an unusable header.

    The message names the file (and the record or row where there is one), so the
    command line can print it as it is.
    """


class UsageError(ValueError):
    """Arguments that do not make a valid request, such as two inputs or none."""
