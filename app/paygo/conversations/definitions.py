"""Flow definitions: the typed shape of a `flows/*.yaml` file, and how it is read.

A flow is data a distributor edits: states of kind menu, input, action and end, text per
language with `{placeholders}`. Reading never raises on a bad file; it collects problems
(file, line, state, language, message) so `paygo flows check` can list them all at once.
A file in an older spec is migrated first (`specs`); a key the spec does not know is a
problem, so a typo (`eror:`) is caught rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from paygo import accountnumbers, yamldoc
from paygo.conversations import specs
from paygo.yamldoc import Located, Problem

KINDS = ("menu", "input", "action", "end")
INPUT_TYPES = ("digits", "account_number", "amount", "text")
#: Characters a screen may hold: the whole USSD reply is 182 with its "CON " or "END ".
CHANNEL_LIMITS = {"ussd": 182 - len("CON "), "sms": 160}
#: Telcos mangle anything past plain ASCII, so screens keep to it.
_PRINTABLE = re.compile(r"^[\x20-\x7e\n]*$")

Texts = Mapping[str, str]


@dataclass(frozen=True)
class InputRule:
    """How an input state checks what the customer typed."""

    type: str
    min_length: int = 1
    max_length: int = 20
    maximum: int | None = None  # amount: largest accepted, in major units

    def width(self) -> int:
        """The longest value this rule can store (for placeholder lengths)."""
        if self.type == "account_number":
            return accountnumbers.LENGTH + 4
        if self.type == "amount":
            return len(str(self.maximum or 10**7)) + 3
        return self.max_length

    def clean(self, raw: str) -> str | None:
        """The stored value for `raw`, or None when it is not acceptable."""
        checks: dict[str, Callable[[str], str | None]] = {
            "digits": self._digits,
            "account_number": self._account,
            "amount": self._amount,
            "text": self._text,
        }
        return checks[self.type](raw.strip())

    def _digits(self, raw: str) -> str | None:
        ok = raw.isdigit() and raw.isascii() and self.min_length <= len(raw) <= self.max_length
        return raw if ok else None

    def _account(self, raw: str) -> str | None:
        number = raw.replace(" ", "")
        ok = number.isascii() and len(number) <= self.width() and accountnumbers.is_valid(number)
        return number if ok else None

    def _amount(self, raw: str) -> str | None:
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,2})?", raw):
            return None
        value = Decimal(raw)
        if value <= 0 or (self.maximum is not None and value > self.maximum):
            return None
        return raw

    def _text(self, raw: str) -> str | None:
        text = " ".join(raw.split())
        ok = self.min_length <= len(text) <= self.max_length and text.isprintable()
        return text if ok else None


@dataclass(frozen=True)
class Option:
    """A numbered choice on a menu."""

    text: Texts
    next: str
    value: str | None = None


@dataclass(frozen=True)
class State:
    """One state of a flow."""

    name: str
    kind: str
    text: Texts | None = None
    options: tuple[Option, ...] = ()
    items: str | None = None  # menu: a list an action produced, shown as options
    store: str | None = None  # menu/input: where the chosen value or input goes
    next: str | None = None
    on: Mapping[str, str] = field(default_factory=dict)  # action: its branches -> states
    action: str | None = None
    input: InputRule | None = None
    error: Texts | None = None  # input: shown above the text when the input is refused

    def targets(self) -> list[str]:
        """Every state this one can lead to."""
        found = [o.next for o in self.options] + list(self.on.values())
        return found + ([self.next] if self.next else [])


@dataclass(frozen=True)
class Flow:
    """A whole flow file, read."""

    name: str
    path: str
    channel: str
    languages: tuple[str, ...]
    start: str
    home: str | None
    strings: Mapping[str, Texts]
    states: Mapping[str, State]
    commands: Mapping[str, Any] = field(default_factory=dict)  # SMS: keywords, language names
    spec: int = specs.CURRENT  # the spec the file is written in (older ones were migrated)
    migrated: tuple[str, ...] = ()  # what migrating it to the current spec changed

    @property
    def limit(self) -> int:
        return CHANNEL_LIMITS[self.channel]

    def text(self, texts: Texts, lang: str) -> str:
        """The text in `lang`, or in the flow's first language when it has none."""
        return texts.get(lang) or texts[self.languages[0]]

    def string(self, key: str, lang: str) -> str:
        """A flow-wide string (navigation labels, errors) in `lang`."""
        return self.text(self.strings[key], lang)


def read_flow(path: Path) -> tuple[Flow | None, list[Problem]]:
    """Read one flow file; the flow is None when it is too broken to validate further."""
    name = path.name
    try:
        raw = yamldoc.load(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [Problem(name, f"cannot be read: {exc}".splitlines()[0])]
    if not isinstance(raw, Located):
        return None, [Problem(name, "is not a mapping of flow, channel, languages, states")]
    spec, problems = _spec(name, raw)
    if problems:
        return None, problems
    migrated = specs.migrate(raw, spec)
    allowed = specs.TOP_KEYS + ((specs.COMMANDS_KEY,) if raw.get("channel") == "sms" else ())
    problems = _unknown(name, raw, allowed, "top-level key")
    broken = _check_top(name, raw)
    if broken:
        return None, problems + broken
    states = {}
    for state_name, body in raw["states"].items():
        line = raw["states"].line_of(state_name)
        state = _read_state(name, str(state_name), body, problems, line)
        if state is not None:
            states[state.name] = state
    flow = Flow(
        name=str(raw["flow"]),
        path=name,
        channel=str(raw["channel"]),
        languages=tuple(raw["languages"]),
        start=str(raw["start"]),
        home=str(raw["home"]) if raw.get("home") else None,
        strings=_read_strings(name, raw.get("strings"), problems),
        states=states,
        commands=_read_commands(name, raw, problems),
        spec=spec,
        migrated=tuple(migrated),
    )
    return flow, problems


def _spec(file: str, raw: Located) -> tuple[int, list[Problem]]:
    """The spec a file is written in: `spec: N`, or 0 when it says none."""
    spec = raw.get("spec", 0)
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 0:
        return 0, [Problem(file, "spec must be a whole number", line=raw.line_of("spec"))]
    if spec > specs.CURRENT:
        return spec, [
            Problem(
                file,
                f"spec {spec} is newer than this gateway reads (up to {specs.CURRENT})",
                line=raw.line_of("spec"),
            )
        ]
    return spec, []


def _check_top(file: str, raw: Located) -> list[Problem]:
    """What makes a file unreadable as a flow: missing or malformed top-level keys."""
    problems = []
    for key in ("flow", "channel", "languages", "start", "states"):
        if key not in raw:
            problems.append(Problem(file, f"missing top-level key {key!r}"))
    if problems:
        return problems
    if raw["channel"] not in CHANNEL_LIMITS:
        problems.append(Problem(file, f"channel must be one of {', '.join(CHANNEL_LIMITS)}"))
    languages = raw["languages"]
    if not (
        isinstance(languages, list) and languages and all(isinstance(x, str) for x in languages)
    ):
        problems.append(Problem(file, "languages must be a list of language codes"))
    if not isinstance(raw["states"], Located) or not raw["states"]:
        problems.append(Problem(file, "states must be a mapping of state names"))
    return problems


def _unknown(
    file: str, mapping: Located, allowed: tuple[str, ...], what: str, state: str | None = None
) -> list[Problem]:
    return [
        Problem(
            file,
            f"unknown {what} {key!r} (known: {', '.join(allowed)})",
            state=state,
            line=line,
        )
        for key, line in yamldoc.unknown_keys(mapping, allowed)
    ]


def _read_strings(file: str, raw: Any, problems: list[Problem]) -> dict[str, Texts]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(file, "strings must map names to texts"))
        return {}
    return {str(k): _texts(file, None, v, problems, what=f"string {k}") for k, v in raw.items()}


def _read_commands(file: str, raw: Located, problems: list[Problem]) -> dict[str, Any]:
    commands = raw.get(specs.COMMANDS_KEY)
    if commands is None:
        return {}
    if not isinstance(commands, Located):
        problems.append(
            Problem(file, "commands must map keywords and language_names", line=raw.line)
        )
        return {}
    problems += _unknown(file, commands, specs.COMMANDS_KEYS, "commands key")
    return dict(commands)


def _read_state(
    file: str, name: str, body: Any, problems: list[Problem], line: int
) -> State | None:
    if not isinstance(body, Located):
        problems.append(Problem(file, "must be a mapping", state=name, line=line))
        return None
    kind = body.get("kind")
    if kind not in KINDS:
        problems.append(
            Problem(file, f"kind must be one of {', '.join(KINDS)}", state=name, line=line)
        )
        return None
    problems += _state_keys(file, name, kind, body)
    # Not `on:`, which YAML 1.1 reads as the boolean true.
    on = body.get("branches") or {}
    if not isinstance(on, dict):
        problems.append(Problem(file, "branches must map branch names to states", state=name))
        on = {}
    return State(
        name=name,
        kind=kind,
        text=_texts(file, name, body["text"], problems) if "text" in body else None,
        options=tuple(_read_options(file, name, body.get("options") or [], problems)),
        items=_opt_str(body.get("items")),
        store=_opt_str(body.get("store")),
        next=_opt_str(body.get("next")),
        on={str(k): str(v) for k, v in on.items()},
        action=_opt_str(body.get("action")),
        input=_read_input(file, name, body.get("input"), problems),
        error=_texts(file, name, body["error"], problems) if "error" in body else None,
    )


def _state_keys(file: str, name: str, kind: str, body: Located) -> list[Problem]:
    """Keys no state takes, and keys this kind of state does not take."""
    every = tuple(dict.fromkeys(k for keys in specs.STATE_KEYS.values() for k in keys))
    problems = _unknown(file, body, every, "key", state=name)
    misplaced = [
        key
        for key in body
        if key in every and key not in specs.STATE_KEYS[kind] and key not in specs.SHAPE_CHECKED
    ]
    problems += [
        Problem(
            file,
            f"{kind} states take no {key!r} (they take {', '.join(specs.STATE_KEYS[kind])})",
            state=name,
            line=body.line_of(key),
        )
        for key in misplaced
    ]
    return problems


def _read_options(file: str, state: str, raw: Any, problems: list[Problem]) -> list[Option]:
    if not isinstance(raw, list):
        problems.append(Problem(file, "options must be a list", state=state))
        return []
    options = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or "text" not in item or "next" not in item:
            problems.append(Problem(file, f"option {i} needs text and next", state=state))
            continue
        if isinstance(item, Located):
            problems += _unknown(file, item, specs.OPTION_KEYS, f"option {i} key", state=state)
        options.append(
            Option(
                text=_texts(file, state, item["text"], problems),
                next=str(item["next"]),
                value=_opt_str(item.get("value")),
            )
        )
    return options


def _read_input(file: str, state: str, raw: Any, problems: list[Problem]) -> InputRule | None:
    if raw is None:
        return None
    spec = {"type": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict) or spec.get("type") not in INPUT_TYPES:
        problems.append(
            Problem(file, f"input type must be one of {', '.join(INPUT_TYPES)}", state=state)
        )
        return None
    if isinstance(spec, Located):
        problems += _unknown(file, spec, specs.INPUT_KEYS, "input key", state=state)
    try:
        rule = InputRule(
            type=spec["type"],
            min_length=int(spec.get("min_length", 1)),
            max_length=int(spec.get("max_length", 20)),
            maximum=int(spec["max"]) if "max" in spec else None,
        )
    except (TypeError, ValueError, InvalidOperation):
        problems.append(Problem(file, "input lengths and max must be whole numbers", state=state))
        return None
    if not 1 <= rule.min_length <= rule.max_length <= 160:
        problems.append(
            Problem(
                file, "input lengths must satisfy 1 <= min_length <= max_length <= 160", state=state
            )
        )
    return rule


def _texts(
    file: str, state: str | None, raw: Any, problems: list[Problem], what: str = "text"
) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        problems.append(Problem(file, f"{what} must map language codes to strings", state=state))
        return {}
    return {str(k): v.rstrip("\n") for k, v in raw.items()}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def is_plain(text: str) -> bool:
    """True when a text keeps to printable ASCII and newlines."""
    return bool(_PRINTABLE.match(text))
