"""One error tree for the gateway; each error carries its context as attributes."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    #: HTTP status the operator API and callbacks answer with.
    status_code = 400
    #: Short machine-readable code for JSON replies.
    code = "gateway_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "message": self.message,
            **{k: v for k, v in self.context.items() if _plain(v)},
        }


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


class ConfigurationError(GatewayError):
    """The environment does not describe a service that can run."""

    code = "configuration"

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message, setting=setting)
        self.setting = setting


class NotFound(GatewayError):
    """A customer, account, device or payment that does not exist."""

    status_code = 404
    code = "not_found"


class Forbidden(GatewayError):
    """A request that failed its authentication: a wrong signature or path token."""

    status_code = 403
    code = "forbidden"


class InvalidInput(GatewayError):
    """Input a person or a provider sent that we cannot accept."""

    code = "invalid_input"


class Conflict(GatewayError):
    """The request contradicts what is already stored."""

    status_code = 409
    code = "conflict"


class ImportFailed(GatewayError):
    """A device file has bad rows; nothing was imported."""

    code = "import_failed"

    def __init__(self, message: str, *, problems: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.problems = problems


class TokenError(GatewayError):
    """A token cannot be issued for this device or value."""

    code = "token_error"


class PaymentError(GatewayError):
    """A payment cannot be credited as asked."""

    code = "payment_error"


class Unavailable(GatewayError):
    """Something the gateway shares state through (Redis) did not answer in time."""

    status_code = 503
    code = "unavailable"


class ProviderError(GatewayError):
    """An outbound provider call failed; `permanent` says whether retrying can help."""

    status_code = 502
    code = "provider_error"

    def __init__(self, message: str, *, permanent: bool, reason: str | None = None) -> None:
        super().__init__(message, permanent=permanent, reason=reason)
        self.permanent = permanent
        self.reason = reason or message


class FlowError(GatewayError):
    """A flow definition is invalid; says which file, state and language."""

    code = "flow_error"
