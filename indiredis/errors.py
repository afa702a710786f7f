"""The package's exceptions: every error indiredis raises on purpose is an :class:`IndiredisError`.

Those that report bad input a caller gave (a BLOB, a form, a request a property does not allow) are
also :class:`ValueError`, as they always were, so ``except ValueError`` keeps catching them.
"""

from __future__ import annotations


class IndiredisError(Exception):
    """Root of the exceptions indiredis raises."""


class ConfigError(IndiredisError):
    """A configuration mistake, as one line for the journal."""


class ServiceUnavailable(IndiredisError):
    """This installation cannot build the service (its bridge factory is missing)."""


class BlobError(IndiredisError, ValueError):
    """A BLOB that cannot be stored (bad base64, corrupt or oversized compressed data)."""


class FormError(IndiredisError, ValueError):
    """A request body that cannot be read."""


class SetError(IndiredisError, ValueError):
    """A request the property does not allow, with the reason to show."""


__all__ = ["BlobError", "ConfigError", "FormError", "IndiredisError", "ServiceUnavailable", "SetError"]
