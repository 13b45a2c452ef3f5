"""Exceptions shared across PVC packages."""


class PVCError(Exception):
    """Base class of every error PVC raises on purpose."""


class ConfigError(PVCError):
    """The node configuration file is missing, unreadable or invalid.

    ``str()`` of the error is one line naming the offending key.
    """
