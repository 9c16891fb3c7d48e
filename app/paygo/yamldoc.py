"""YAML files people edit (flows, texts), read with the line of every key.

A reader that knows where each key was can say `ussd.yaml:42` about a typo. Mappings come
back as `Located` dicts; everything else is what PyYAML's safe loader makes. Readers never
raise on a bad file: they collect `Problem`s, so a check can list them all at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: libyaml's parser when present: ten times faster, and every app start reads these files.
_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file people edit: where it is and what it is."""

    file: str
    message: str
    state: str | None = None
    language: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = [f"{self.file}:{self.line}" if self.line else self.file]
        if self.state:
            where.append(f"state {self.state}")
        if self.language:
            where.append(f"language {self.language}")
        return f"{', '.join(where)}: {self.message}"


class Located(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        """The line `key` is on, else the mapping's own line."""
        return self.key_lines.get(key, self.line)


class _Loader(_BASE):  # type: ignore[misc]
    """The safe loader, building `Located` mappings."""


def _mapping(loader: Any, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)  # `<<` merge keys, as the safe loader allows them
    mapping = Located()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except TypeError:  # a list or mapping as a key: unhashable
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def load(path: Path) -> Any:
    """Read one YAML file; raises OSError, UnicodeDecodeError or yaml.YAMLError."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def unknown_keys(mapping: Located, allowed: Iterable[str]) -> list[tuple[str, int]]:
    """The keys of `mapping` not in `allowed`, each with its line."""
    known = set(allowed)
    return [(str(key), mapping.line_of(key)) for key in mapping if key not in known]
