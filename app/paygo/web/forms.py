"""Reading provider form posts: one rule for a required, bounded field."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from paygo.errors import InvalidInput


def required_field(form: MultiDict[str, str], name: str, limit: int) -> str:
    """The stripped value of a field that must be present and at most `limit` long."""
    value = form.get(name, "").strip()
    if not value:
        raise InvalidInput(f"{name} is required", field=name)
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    return value
