"""Value types: credentials never show their password; settings reject nonsense."""

from __future__ import annotations

import pytest

from imagestreams.registry import ClientSettings, Credentials, Platform, RegistryError


def test_credentials_repr_and_str_hide_the_password() -> None:
    credentials = Credentials("reader", "s3cret-pass")
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials]), repr({"c": credentials})):
        assert "s3cret-pass" not in text
        assert "reader" in text
    assert credentials.identity != Credentials("reader", "other").identity
    assert "s3cret-pass" not in credentials.identity


def test_registry_error_fields() -> None:
    error = RegistryError("NotFound", "image x not found", status=404)
    assert (error.reason, error.message, error.status, error.retry_after) == (
        "NotFound",
        "image x not found",
        404,
        None,
    )
    assert str(error) == "image x not found"
    assert "NotFound" in repr(error)


def test_platform_text() -> None:
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    assert str(Platform("", "amd64")) == "*/amd64"


def test_settings_defaults() -> None:
    settings = ClientSettings()
    assert settings.max_attempts == 3
    assert settings.max_retry_after == 60
    assert settings.per_registry_concurrency == 4
    assert (settings.per_registry_rate, settings.per_registry_burst) == (5.0, 10)
    assert settings.default_platform == Platform("linux", "amd64")
    assert settings.extra_ca_file is None


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"per_registry_concurrency": 0},
        {"per_registry_burst": 0},
        {"cache_size": 0},
        {"read_timeout": 0},
    ],
)
def test_settings_validation(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ClientSettings(**bad)  # type: ignore[arg-type]
