"""The one placeholder syntax of every customer text: `{name}`, filled from named values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def placeholders(text: str) -> list[str]:
    """The placeholder names in a text, in order."""
    return PLACEHOLDER.findall(text)


def fill(text: str, values: Mapping[str, Any]) -> str:
    """Replace each `{name}` with its value (every name must have one)."""
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)
