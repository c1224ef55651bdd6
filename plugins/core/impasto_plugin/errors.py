"""The one error a plugin shows the artist."""


class PluginError(Exception):
    """A problem the artist can fix; the editor shows the message (never a traceback)."""
