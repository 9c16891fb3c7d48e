"""One typed settings object: each setting declared once, read from the environment, validated.

A field's environment variable is its name in capitals (`sms_max_parts` is SMS_MAX_PARTS)
unless its declaration names another (`validation_alias`). Every variable is documented in
.env.example, which a test keeps in step with the fields here.
"""

from __future__ import annotations

import logging
import os
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    AliasGenerator,
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from paygo.errors import ConfigurationError

# Values shipped in .env.example and the demo: fine on a laptop, refused in production.
DEFAULT_MASTER_KEY = "dev-master-key-change-me"
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"


class _ProductionSecret:
    """Marks a setting production refuses while it is missing, its default, or short."""


PRODUCTION_SECRET = _ProductionSecret()


def default_instance_path() -> str:
    """Where local state goes by default: `instance/` beside a checkout, else the user's
    data folder (`~/.local/share/paygo` on Linux).

    An installed package never writes inside site-packages: it is often read-only, and
    an upgrade replaces it.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations").is_dir():
        return str(checkout / "instance")
    import platformdirs

    return platformdirs.user_data_dir("paygo", appauthor=False)


def _routes(value: object) -> object:
    """Parse `SMS_ROUTES` such as `254=africastalking,255=twilio` (country calling codes)."""
    if not isinstance(value, str):
        return value  # already a mapping (an override), checked as dict[str, str]
    from paygo.messaging import providers as sms_providers

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


def _log_level(value: str) -> str:
    if not isinstance(logging.getLevelName(value.upper()), int):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value.upper()


def _country(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("must be an ISO 3166 country code such as KE")
    return value.upper()


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA zone such as Africa/Nairobi") from None
    return value


def _web_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


Hour = Annotated[int, Field(ge=0, le=23)]
Secret = Annotated[str, PRODUCTION_SECRET]


class Settings(BaseSettings):
    """Everything the gateway reads from its environment."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=AliasGenerator(validation_alias=str.upper),
        validate_by_name=True,
        case_sensitive=True,
    )

    env: Literal["development", "production", "test"] = Field(
        "development", validation_alias="PAYGO_ENV"
    )
    master_key: Secret = Field(DEFAULT_MASTER_KEY, validation_alias="PAYGO_MASTER_KEY")
    secret_key: Secret = DEFAULT_SECRET_KEY
    database_url: str = ""  # empty: paygo.sqlite3 in the instance folder
    redis_url: str | None = None
    # How long any Redis call may wait: acknowledgements, USSD hops and /healthz make them.
    redis_timeout_seconds: PositiveFloat = 0.2
    public_base_url: Annotated[str, AfterValidator(_web_url)] = "http://127.0.0.1:5000"
    instance_path: str = Field(
        default_factory=default_instance_path, validation_alias="PAYGO_INSTANCE_PATH"
    )
    distributor_name: str = "SunPower"
    paybill_number: str = "600638"
    default_country: Annotated[str, AfterValidator(_country)] = "KE"
    default_timezone: Annotated[str, AfterValidator(_timezone)] = "Africa/Nairobi"
    default_language: str = "en"
    log_level: Annotated[str, AfterValidator(_log_level)] = "INFO"
    # Outbound SMS; each provider names the settings it needs (paygo.messaging.providers).
    sms_provider: str = "console"
    sms_routes: Annotated[dict[str, str], NoDecode, BeforeValidator(_routes)] = Field(
        default_factory=dict
    )
    sms_max_parts: PositiveInt = 1
    sms_timeout_seconds: PositiveFloat = 10.0
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
    quiet_hours_start: Hour = 20
    quiet_hours_end: Hour = 7
    # Outbound SMS delivery: retries, reconciliation of unknown outcomes, the sweep.
    sms_max_attempts: PositiveInt = 10
    sms_retry_base_seconds: PositiveFloat = 5.0
    sms_retry_max_seconds: PositiveFloat = 1800.0
    sms_reconcile_after_seconds: PositiveFloat = 300.0
    sms_sweep_interval_seconds: PositiveFloat = 30.0
    # Payment callbacks: an unguessable path token per provider; unset means disabled (404).
    mpesa_callback_token: str | None = None
    mpesa_validation_enabled: bool = True
    mtn_momo_callback_token: str | None = None
    airtel_callback_token: str | None = None
    airtel_callback_secret: str | None = None
    at_payments_callback_token: str | None = None
    # Conversations
    ussd_session_ttl_seconds: PositiveInt = 200
    lookup_lockout_failures: PositiveInt = 3
    lookup_lockout_seconds: PositiveInt = 3600
    flows_dir: str = ""  # empty: the flows/ folder shipped with the gateway
    # Tokens
    token_drift_warning: PositiveInt = 40
    # Connected boxes (OpenPAYGO Metrics): flagged silent after this long without a report.
    metrics_silent_after_hours: PositiveInt = 48

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values passed in: load_settings() reads the environment it is given, so
        # `Settings(...)` in a test never picks up the process's variables.
        return (init_settings,)


def variable(name: str) -> str:
    """The environment variable of the setting `name`."""
    alias = Settings.model_fields[name].validation_alias
    assert isinstance(alias, str)  # set for every field, by the alias generator or by hand
    return alias


#: Environment variable -> setting name, for every setting.
VARIABLES: Mapping[str, str] = {variable(name): name for name in Settings.model_fields}


class _Environment(EnvSettingsSource):
    """The variables of a given environment, stripped; a blank one means the default."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._given = {var: raw.strip() for var, raw in environ.items() if var in VARIABLES}
        super().__init__(Settings, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {var: value for var, value in self._given.items() if value}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read and validate settings from the environment (and optional overrides by name)."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    read = _Environment(os.environ if environ is None else environ)()
    values = {VARIABLES[var]: value for var, value in read.items()} | overrides
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise _refusal(exc) from None
    instance = Path(settings.instance_path).expanduser().resolve()
    settings = settings.model_copy(
        update={
            "instance_path": str(instance),
            "database_url": settings.database_url or f"sqlite:///{instance / 'paygo.sqlite3'}",
        }
    )
    validate(settings)
    return settings


def _refusal(exc: ValidationError) -> ConfigurationError:
    """One error naming every variable that failed, each with its reason (never its value)."""
    problems = [(_variable_of(error), _reason(error)) for error in exc.errors()]
    return ConfigurationError(
        "; ".join(f"{var}: {reason}" for var, reason in problems), setting=problems[0][0]
    )


def _variable_of(error: ErrorDetails) -> str:
    key = str(error["loc"][0]) if error["loc"] else ""
    return variable(key) if key in Settings.model_fields else key


def _reason(error: ErrorDetails) -> str:
    cause = error.get("ctx", {}).get("error")
    return str(cause) if error["type"] == "value_error" and cause else error["msg"]


def validate(settings: Settings) -> None:
    """Refuse settings that cannot work together; in production, refuse default secrets."""
    if settings.production:
        _refuse_default_secrets(settings)
    # Each SMS provider names what it needs (paygo.messaging.providers).
    from paygo.messaging import providers as sms_providers

    sms_providers.check_settings(settings)


def _refuse_default_secrets(settings: Settings) -> None:
    problems: list[tuple[str, str]] = []
    for name, field in Settings.model_fields.items():
        if PRODUCTION_SECRET not in field.metadata:
            continue
        value = getattr(settings, name)
        if not value or value == field.default:
            problems.append((variable(name), "is missing or still the default"))
        elif len(value) < 16:
            problems.append((variable(name), "is too short (16 characters at least)"))
    if problems:
        raise ConfigurationError(
            "; ".join(f"{var} {reason}" for var, reason in problems)
            + "; set a long random value (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')",
            setting=problems[0][0],
        )
