"""One typed settings object read from the environment, validated, documented in .env.example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paygo.errors import ConfigurationError
from paygo.settings import (
    DEFAULT_MASTER_KEY,
    DEFAULT_SECRET_KEY,
    VARIABLES,
    Settings,
    load_settings,
)

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
GOOD_SECRETS = {"SECRET_KEY": "s" * 32, "PAYGO_MASTER_KEY": "m" * 32}


def _example() -> list[tuple[str, str]]:
    """(variable, value) for each setting line of .env.example, in order."""
    entries: list[tuple[str, str]] = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            var, _, value = line.partition("=")
            entries.append((var.strip(), value))
    return entries


def test_with_an_empty_environment_the_database_is_sqlite_in_the_instance_folder(
    tmp_path: Path,
) -> None:
    settings = load_settings(environ={}, overrides={"instance_path": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'paygo.sqlite3'}"
    assert settings.redis_url is None
    assert settings.env == "development"
    assert not settings.production


def test_the_instance_folder_comes_from_paygo_instance_path(tmp_path: Path) -> None:
    settings = load_settings(environ={"PAYGO_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'paygo.sqlite3'}"


def test_core_variables_are_read_into_typed_fields() -> None:
    settings = load_settings(
        environ={
            "DATABASE_URL": "postgresql://u@db/paygo",
            "REDIS_URL": "redis://r:6379/2",
            "PAYGO_ENV": "production",
            "PUBLIC_BASE_URL": "https://pay.example.org",
            "SMS_MAX_PARTS": " 3 ",
            "SMS_TIMEOUT_SECONDS": "2.5",
            "MPESA_VALIDATION_ENABLED": "no",
            "SMS_ROUTES": "+254=africastalking, 255=console",
            "AT_USERNAME": "sandbox",
            "AT_API_KEY": "k",
            "DEFAULT_COUNTRY": "tz",
            "LOG_LEVEL": "debug",
            **GOOD_SECRETS,
        }
    )
    assert settings.database_url == "postgresql://u@db/paygo"
    assert settings.redis_url == "redis://r:6379/2"
    assert settings.production
    assert settings.public_base_url == "https://pay.example.org"
    assert settings.master_key == "m" * 32
    assert settings.sms_max_parts == 3
    assert settings.sms_timeout_seconds == 2.5
    assert settings.mpesa_validation_enabled is False
    assert settings.sms_routes == {"254": "africastalking", "255": "console"}
    assert settings.default_country == "TZ"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("var", sorted(VARIABLES))
def test_every_variable_sets_its_setting(var: str) -> None:
    name = VARIABLES[var]
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    raw = _sample_for(var, default)
    secrets = GOOD_SECRETS if var == "PAYGO_ENV" else {}
    settings = load_settings(
        environ={
            **secrets,
            var: raw,
            "AT_USERNAME": "u",
            "AT_API_KEY": "k",
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_FROM": "+15005550006",
        }
    )
    assert getattr(settings, name) != default


def _sample_for(var: str, default: Any) -> str:
    known = {
        "PAYGO_ENV": "production",
        "SECRET_KEY": "s" * 32,
        "PAYGO_MASTER_KEY": "m" * 32,
        "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
        "PUBLIC_BASE_URL": "https://x.example",
        "DEFAULT_COUNTRY": "UG",
        "DEFAULT_TIMEZONE": "Africa/Kampala",
        "DEFAULT_LANGUAGE": "sw",
        "LOG_LEVEL": "WARNING",
        "SMS_PROVIDER": "twilio",
        "SMS_ROUTES": "256=twilio",
        "PAYGO_INSTANCE_PATH": "/tmp/elsewhere",
    }
    if var in known:
        return known[var]
    if isinstance(default, bool):
        return "false" if default else "true"
    if isinstance(default, int):
        return str(default + 1)
    if isinstance(default, float):
        return str(default + 1.5)
    return "x"


def test_a_blank_variable_means_the_default() -> None:
    settings = load_settings(environ={"REDIS_URL": "  ", "SMS_MAX_PARTS": "", "PAYGO_ENV": ""})
    assert settings.redis_url is None
    assert settings.sms_max_parts == 1
    assert settings.env == "development"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SMS_MAX_PARTS": "two"}, "SMS_MAX_PARTS"),
        ({"SMS_TIMEOUT_SECONDS": "soon"}, "SMS_TIMEOUT_SECONDS"),
        ({"MPESA_VALIDATION_ENABLED": "maybe"}, "MPESA_VALIDATION_ENABLED"),
        ({"SMS_ROUTES": "254=pigeon"}, "SMS_ROUTES"),
        ({"SMS_ROUTES": "kenya=twilio"}, "SMS_ROUTES"),
        ({"PAYGO_ENV": "staging"}, "PAYGO_ENV"),
        ({"SMS_PROVIDER": "carrier-pigeon"}, "SMS_PROVIDER"),
        ({"QUIET_HOURS_START": "24"}, "QUIET_HOURS_START"),
        ({"QUIET_HOURS_END": "-1"}, "QUIET_HOURS_END"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"DEFAULT_COUNTRY": "Kenya"}, "DEFAULT_COUNTRY"),
        ({"DEFAULT_TIMEZONE": "Mars/Olympus"}, "DEFAULT_TIMEZONE"),
        ({"PUBLIC_BASE_URL": "gateway.example.org"}, "PUBLIC_BASE_URL"),
        ({"SMS_MAX_PARTS": "0"}, "SMS_MAX_PARTS"),
        ({"USSD_SESSION_TTL_SECONDS": "-1"}, "USSD_SESSION_TTL_SECONDS"),
        ({"SMS_PROVIDER": "africastalking"}, "AT_USERNAME"),
        ({"SMS_PROVIDER": "africastalking", "AT_USERNAME": "u"}, "AT_API_KEY"),
        ({"SMS_ROUTES": "255=twilio"}, "TWILIO_ACCOUNT_SID"),
        (
            {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
            "TWILIO_FROM",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ=environ)
    assert caught.value.setting == named
    assert named in caught.value.message


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SECRET_KEY": "s" * 32}, "PAYGO_MASTER_KEY"),
        ({"SECRET_KEY": "s" * 32, "PAYGO_MASTER_KEY": DEFAULT_MASTER_KEY}, "PAYGO_MASTER_KEY"),
        ({"SECRET_KEY": "s" * 32, "PAYGO_MASTER_KEY": "  "}, "PAYGO_MASTER_KEY"),
        ({"SECRET_KEY": "s" * 32, "PAYGO_MASTER_KEY": "short"}, "PAYGO_MASTER_KEY"),
        ({"PAYGO_MASTER_KEY": "m" * 32}, "SECRET_KEY"),
        ({"PAYGO_MASTER_KEY": "m" * 32, "SECRET_KEY": DEFAULT_SECRET_KEY}, "SECRET_KEY"),
    ],
)
def test_production_refuses_a_missing_or_default_secret_and_names_it(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"PAYGO_ENV": "production", **environ})
    assert caught.value.setting == named
    assert caught.value.message.startswith(named)


def test_production_names_every_missing_default_or_short_secret_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"PAYGO_ENV": "production", "SECRET_KEY": "hunter2"})
    message = caught.value.message
    assert "PAYGO_MASTER_KEY is missing or still the default" in message
    assert "SECRET_KEY is too short" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_every_bad_variable_is_named_at_once_without_echoing_its_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            environ={"SMS_MAX_PARTS": "hunter2", "QUIET_HOURS_END": "25", "LOG_LEVEL": "loud"}
        )
    message = caught.value.message
    assert caught.value.setting == "LOG_LEVEL"  # the first, in the order settings are declared
    for var in ("SMS_MAX_PARTS", "QUIET_HOURS_END", "LOG_LEVEL"):
        assert var in message
    assert "hunter2" not in message and "loud" not in message


def test_settings_built_directly_ignore_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMS_MAX_PARTS", "3")
    assert Settings().sms_max_parts == 1
    assert load_settings().sms_max_parts == 3


def test_an_override_wins_over_the_environment() -> None:
    settings = load_settings(environ={"SMS_MAX_PARTS": "3"}, overrides={"sms_max_parts": 2})
    assert settings.sms_max_parts == 2


def test_settings_cannot_be_changed_once_read() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.env = "production"  # type: ignore[misc]
    assert settings.env == "development"


def test_development_runs_with_the_default_secrets() -> None:
    settings = load_settings(environ={})
    assert settings.master_key == DEFAULT_MASTER_KEY
    assert settings.secret_key == DEFAULT_SECRET_KEY


def test_production_starts_with_real_secrets() -> None:
    assert load_settings(environ={"PAYGO_ENV": "production", **GOOD_SECRETS}).production


def test_unknown_overrides_are_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting.*master_kye"):
        load_settings(environ={}, overrides={"master_kye": "x"})


def test_overrides_are_validated_like_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="PAYGO_MASTER_KEY"):
        load_settings(environ={}, overrides={"env": "production", "secret_key": "s" * 32})


def test_env_example_lists_every_setting_once_each_with_a_comment() -> None:
    entries = _example()
    listed = [var for var, _ in entries]
    assert sorted(listed) == sorted(VARIABLES), "keep .env.example and paygo.settings in step"
    assert len(listed) == len(set(listed))
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for var in listed:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{var}="))
        above = lines[:index]
        # The variable, or the run of variables it belongs to, sits under a comment line.
        while above and above[-1].split("=", 1)[0] in VARIABLES:
            above.pop()
        assert above and above[-1].startswith("# "), f"{var} has no comment above it"


def test_env_example_values_are_the_defaults_and_load_cleanly() -> None:
    environ = dict(_example())
    from_example = load_settings(environ=environ, overrides={"instance_path": "/tmp/x"})
    defaults = load_settings(environ={}, overrides={"instance_path": "/tmp/x"})
    assert from_example == defaults
