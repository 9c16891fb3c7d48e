"""One typed settings object, read from the environment once and validated."""

from __future__ import annotations

import logging
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import phonenumbers

from paygo.errors import ConfigurationError
from paygo.messaging import providers as sms_providers

# Values shipped in .env.example and the demo: fine on a laptop, refused in production.
DEFAULT_MASTER_KEY = "dev-master-key-change-me"
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"


def _bool(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _routes(value: str) -> dict[str, str]:
    """Parse `SMS_ROUTES` such as `254=africastalking,255=twilio` (country calling codes)."""
    routes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        prefix, _, provider = part.partition("=")
        prefix = prefix.strip().lstrip("+")
        if not prefix.isdigit() or provider.strip() not in sms_providers.REGISTRY:
            raise ValueError(
                f"bad route {part!r}: expected CODE=provider with provider in "
                f"{', '.join(sms_providers.REGISTRY)}"
            )
        routes[prefix] = provider.strip()
    return routes


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment."""

    env: str = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    master_key: str = DEFAULT_MASTER_KEY
    database_url: str = ""
    redis_url: str | None = None
    public_base_url: str = "http://127.0.0.1:5000"
    instance_path: str = "instance"
    distributor_name: str = "SunPower"
    paybill_number: str = "600638"
    default_country: str = "KE"
    default_timezone: str = "Africa/Nairobi"
    default_language: str = "en"
    log_level: str = "INFO"
    # Outbound SMS
    sms_provider: str = "console"
    sms_routes: dict[str, str] = field(default_factory=dict)
    sms_max_parts: int = 1
    sms_timeout_seconds: float = 10.0
    at_username: str | None = None
    at_api_key: str | None = None
    at_sender_id: str | None = None
    at_api_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    infobip_base_url: str | None = None
    infobip_api_key: str | None = None
    infobip_sender: str | None = None
    # The secret path segment of Infobip's web hooks; unset means they answer 404.
    infobip_callback_token: str | None = None
    quiet_hours_start: int = 20
    quiet_hours_end: int = 7
    # Outbound SMS delivery: retries, reconciliation of unknown outcomes, the sweep.
    sms_max_attempts: int = 10
    sms_retry_base_seconds: float = 5.0
    sms_retry_max_seconds: float = 1800.0
    sms_reconcile_after_seconds: float = 300.0
    sms_sweep_interval_seconds: float = 30.0
    # Payment callbacks: an unguessable path token per provider; unset means disabled (404).
    mpesa_callback_token: str | None = None
    mpesa_validation_enabled: bool = True
    mtn_momo_callback_token: str | None = None
    airtel_callback_token: str | None = None
    airtel_callback_secret: str | None = None
    at_payments_callback_token: str | None = None
    # Conversations
    ussd_session_ttl_seconds: int = 200
    lookup_lockout_failures: int = 3
    lookup_lockout_seconds: int = 3600
    flows_dir: str = ""  # empty: the flows/ folder shipped with the gateway
    # Tokens
    token_drift_warning: int = 40

    @property
    def production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """Return a copy with some fields replaced (tests, the factory's test_config)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


# Environment variable -> (field, parser). One table so .env.example and the code agree.
_ENV: dict[str, tuple[str, Any]] = {
    "PAYGO_ENV": ("env", str),
    "SECRET_KEY": ("secret_key", str),
    "PAYGO_MASTER_KEY": ("master_key", str),
    "DATABASE_URL": ("database_url", str),
    "REDIS_URL": ("redis_url", str),
    "PUBLIC_BASE_URL": ("public_base_url", str),
    "PAYGO_INSTANCE_PATH": ("instance_path", str),
    "DISTRIBUTOR_NAME": ("distributor_name", str),
    "PAYBILL_NUMBER": ("paybill_number", str),
    "DEFAULT_COUNTRY": ("default_country", str.upper),
    "DEFAULT_TIMEZONE": ("default_timezone", str),
    "DEFAULT_LANGUAGE": ("default_language", str),
    "LOG_LEVEL": ("log_level", str.upper),
    "SMS_PROVIDER": ("sms_provider", str),
    "SMS_ROUTES": ("sms_routes", _routes),
    "SMS_MAX_PARTS": ("sms_max_parts", int),
    "SMS_TIMEOUT_SECONDS": ("sms_timeout_seconds", float),
    "AT_USERNAME": ("at_username", str),
    "AT_API_KEY": ("at_api_key", str),
    "AT_SENDER_ID": ("at_sender_id", str),
    "AT_API_BASE_URL": ("at_api_base_url", str),
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", str),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", str),
    "TWILIO_FROM": ("twilio_from", str),
    "TWILIO_MESSAGING_SERVICE_SID": ("twilio_messaging_service_sid", str),
    "TWILIO_API_BASE_URL": ("twilio_api_base_url", str),
    "INFOBIP_BASE_URL": ("infobip_base_url", str),
    "INFOBIP_API_KEY": ("infobip_api_key", str),
    "INFOBIP_SENDER": ("infobip_sender", str),
    "INFOBIP_CALLBACK_TOKEN": ("infobip_callback_token", str),
    "QUIET_HOURS_START": ("quiet_hours_start", int),
    "QUIET_HOURS_END": ("quiet_hours_end", int),
    "SMS_MAX_ATTEMPTS": ("sms_max_attempts", int),
    "SMS_RETRY_BASE_SECONDS": ("sms_retry_base_seconds", float),
    "SMS_RETRY_MAX_SECONDS": ("sms_retry_max_seconds", float),
    "SMS_RECONCILE_AFTER_SECONDS": ("sms_reconcile_after_seconds", float),
    "SMS_SWEEP_INTERVAL_SECONDS": ("sms_sweep_interval_seconds", float),
    "MPESA_CALLBACK_TOKEN": ("mpesa_callback_token", str),
    "MPESA_VALIDATION_ENABLED": ("mpesa_validation_enabled", _bool),
    "MTN_MOMO_CALLBACK_TOKEN": ("mtn_momo_callback_token", str),
    "AIRTEL_CALLBACK_TOKEN": ("airtel_callback_token", str),
    "AIRTEL_CALLBACK_SECRET": ("airtel_callback_secret", str),
    "AT_PAYMENTS_CALLBACK_TOKEN": ("at_payments_callback_token", str),
    "USSD_SESSION_TTL_SECONDS": ("ussd_session_ttl_seconds", int),
    "LOOKUP_LOCKOUT_FAILURES": ("lookup_lockout_failures", int),
    "LOOKUP_LOCKOUT_SECONDS": ("lookup_lockout_seconds", int),
    "FLOWS_DIR": ("flows_dir", str),
    "TOKEN_DRIFT_WARNING": ("token_drift_warning", int),
}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read and validate settings from the environment (and optional overrides)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var, (name, parse) in _ENV.items():
        raw = environ.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[name] = parse(raw.strip())
        except ValueError as exc:
            raise ConfigurationError(f"{var}: {exc}", setting=var) from exc
    settings = Settings(**values)
    if overrides:
        settings = settings.with_overrides(overrides)
    if not settings.database_url:
        path = Path(settings.instance_path).resolve() / "paygo.sqlite3"
        settings = replace(settings, database_url=f"sqlite:///{path}")
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse settings that cannot work; in production, refuse default secrets."""
    if settings.env not in {"development", "production", "test"}:
        raise ConfigurationError("PAYGO_ENV must be development or production", setting="PAYGO_ENV")
    for var, hour in (
        ("QUIET_HOURS_START", settings.quiet_hours_start),
        ("QUIET_HOURS_END", settings.quiet_hours_end),
    ):
        if not 0 <= hour <= 23:
            raise ConfigurationError(f"{var} must be an hour of the day, 0-23", setting=var)
    _validate_locale(settings)
    _validate_positive(settings)
    if settings.production:
        _enforce_non_default_secrets(settings)
    # Each SMS provider names what it needs (paygo.messaging.providers).
    sms_providers.check_settings(settings)


def _validate_locale(settings: Settings) -> None:
    if not isinstance(logging.getLevelName(settings.log_level), int):
        raise ConfigurationError(
            "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL", setting="LOG_LEVEL"
        )
    if settings.default_country not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(
            "DEFAULT_COUNTRY must be an ISO 3166 country code such as KE", setting="DEFAULT_COUNTRY"
        )
    try:
        zoneinfo.ZoneInfo(settings.default_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            "DEFAULT_TIMEZONE must be an IANA zone such as Africa/Nairobi",
            setting="DEFAULT_TIMEZONE",
        ) from None
    if not settings.public_base_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            "PUBLIC_BASE_URL must start with http:// or https://", setting="PUBLIC_BASE_URL"
        )


def _validate_positive(settings: Settings) -> None:
    for var, value in (
        ("SMS_MAX_PARTS", settings.sms_max_parts),
        ("SMS_TIMEOUT_SECONDS", settings.sms_timeout_seconds),
        ("SMS_MAX_ATTEMPTS", settings.sms_max_attempts),
        ("SMS_RETRY_BASE_SECONDS", settings.sms_retry_base_seconds),
        ("SMS_RETRY_MAX_SECONDS", settings.sms_retry_max_seconds),
        ("SMS_RECONCILE_AFTER_SECONDS", settings.sms_reconcile_after_seconds),
        ("SMS_SWEEP_INTERVAL_SECONDS", settings.sms_sweep_interval_seconds),
        ("USSD_SESSION_TTL_SECONDS", settings.ussd_session_ttl_seconds),
        ("LOOKUP_LOCKOUT_FAILURES", settings.lookup_lockout_failures),
        ("LOOKUP_LOCKOUT_SECONDS", settings.lookup_lockout_seconds),
        ("TOKEN_DRIFT_WARNING", settings.token_drift_warning),
    ):
        if not value > 0:
            raise ConfigurationError(f"{var} must be positive", setting=var)


def _enforce_non_default_secrets(settings: Settings) -> None:
    for var, value, default in (
        ("PAYGO_MASTER_KEY", settings.master_key, DEFAULT_MASTER_KEY),
        ("SECRET_KEY", settings.secret_key, DEFAULT_SECRET_KEY),
    ):
        if not value or value == default:
            raise ConfigurationError(
                f"{var} is missing or still the default; set a long random value "
                f"(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                setting=var,
            )
        if len(value) < 16:
            raise ConfigurationError(f"{var} is too short (16 characters at least)", setting=var)
