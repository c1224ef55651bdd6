"""The base of errors whose message is meant for the user (the CLI prints it on one line, the daemon sends it)."""


class ImpastoError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""
