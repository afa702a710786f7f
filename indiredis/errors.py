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


class HostError(IndiredisError, ValueError):
    """A host description (``indi_server``, ``redis_server``, ``mqtt_server``) that cannot be used."""


class InvalidValue(IndiredisError, ValueError):
    """An argument or a piece of input whose value indiredis cannot use (a number that is none, a
    request a vector kind does not allow, an empty name)."""


class LinkLost(IndiredisError, ConnectionError):
    """A link's connection is lost or cannot be used (no answer, refused, closed, a Redis master
    demoted): it ends the session, which the link retries with back-off."""


class DriverMissing(IndiredisError, FileNotFoundError):
    """An INDI driver executable that is not on PATH."""


class NotAvailable(IndiredisError, RuntimeError):
    """Something a component needs is missing or ended (a configuration section, a dependency, a thread)."""


__all__ = [
    "BlobError",
    "ConfigError",
    "DriverMissing",
    "FormError",
    "HostError",
    "IndiredisError",
    "InvalidValue",
    "LinkLost",
    "NotAvailable",
    "ServiceUnavailable",
    "SetError",
]
