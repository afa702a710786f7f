"""One exception root: every error indiredis raises on purpose is an IndiredisError, and those that were
ValueErrors still are."""

from __future__ import annotations

import pytest

from indiredis import errors
from indiredis.errors import IndiredisError


@pytest.mark.parametrize("name", ["ConfigError", "ServiceUnavailable", "BlobError", "FormError", "SetError"])
def test_every_error_is_under_the_root(name: str) -> None:
    assert issubclass(getattr(errors, name), IndiredisError)


@pytest.mark.parametrize("name", ["BlobError", "FormError", "SetError"])
def test_bad_input_errors_are_still_value_errors(name: str) -> None:
    with pytest.raises(ValueError):
        raise getattr(errors, name)("bad")


def test_the_modules_that_raise_them_still_name_them() -> None:
    from indiredis.indiwsgi import forms, setting
    from indiredis.service import catalog, config
    from indiredis.store import blobs

    assert (
        config.ConfigError is errors.ConfigError and catalog.ServiceUnavailable is errors.ServiceUnavailable
    )
    assert blobs.BlobError is errors.BlobError
    assert forms.FormError is errors.FormError and setting.SetError is errors.SetError


def test_a_bad_blob_raises_blob_error() -> None:
    from indiredis.store.blobs import Base64Stream

    with pytest.raises(IndiredisError):
        Base64Stream().decode(b"not base64 !!!")
