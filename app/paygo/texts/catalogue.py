"""The texts catalogue, `flows/texts.yaml`: every SMS the gateway writes on its own.

Payment receipts, the notice of an operator's code and reminders, each in every language a
customer can choose, as data a distributor edits beside the flows. Reading checks what
does not depend on the values filled in: every message and no unknown one, every language,
only the placeholders the message is given, only GSM-7 characters. `check.py` then
measures each message with the longest values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from paygo import accounts, yamldoc
from paygo.errors import FlowError
from paygo.texts import formats, sms
from paygo.texts.placeholders import placeholders
from paygo.yamldoc import Located, Problem

TEXTS_FILE = "texts.yaml"
SHIPPED = Path(str(files("paygo") / "flows" / TEXTS_FILE))
SPEC = 1

RECEIPT_KINDS = ("time", "deposit", "activated", "minimum", "short", "paid_off", "overpaid")
_RECEIPT_VALUES: tuple[str, ...] = ("amount", "account", "codes", "days", "until", "left")
_RECEIPT_VALUES += ("minimum", "more", "overpaid")
_REMINDER_VALUES = ("distributor", "paybill", "account", "date")
#: Every message ("group.name") and the placeholders it is given.
MESSAGES: dict[str, tuple[str, ...]] = {
    **{f"receipt.{kind}": (*_RECEIPT_VALUES, "tokens") for kind in RECEIPT_KINDS},
    "receipt.refund": _RECEIPT_VALUES,
    "receipt.code": ("codes",),
    "receipt.codes": ("codes",),
    "token_notice.one": ("account", "codes"),
    "token_notice.many": ("account", "codes"),
    "reminder.expiry": _REMINDER_VALUES,
    "reminder.out_of_light": _REMINDER_VALUES,
}
_GROUPS = tuple(dict.fromkeys(key.split(".")[0] for key in MESSAGES))
_TOP_KEYS = ("spec", "languages", "months", *_GROUPS)

Wordings = tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """The catalogue, read: per message and language, its wordings (friendliest first)."""

    path: str
    languages: tuple[str, ...]
    months: Mapping[str, tuple[str, ...]]
    messages: Mapping[str, Mapping[str, Wordings]]
    lines: Mapping[tuple[str, str], int]  # (message, language) -> line, for later problems

    def language(self, preferred: str | None, default: str | None = None) -> str:
        """The customer's language when there are texts in it, else the default, else the
        catalogue's first language."""
        for candidate in (preferred, default):
            if candidate in self.languages:
                return candidate
        return self.languages[0]

    def wordings(self, key: str, lang: str) -> Wordings:
        """The wordings of message `key` in `lang` (or the first language)."""
        return self.messages[key][self.language(lang)]

    def day_month(self, day: date, lang: str) -> str:
        """A short date in the language: `30 Nov`, `30 Des`, `30 nov.`."""
        return formats.day_month(day, self.months[self.language(lang)])


@cache
def shipped() -> Catalogue:
    """The catalogue shipped beside the flows (read once; FlowError when it is broken)."""
    catalogue, problems = read_texts(SHIPPED)
    if catalogue is None or problems:
        raise FlowError(f"invalid texts in {SHIPPED}:\n" + "\n".join(f"  {p}" for p in problems))
    return catalogue


def read_texts(path: Path) -> tuple[Catalogue | None, list[Problem]]:
    """Read a catalogue; it is None when too broken to use."""
    name = path.name
    try:
        raw = yamldoc.load(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [Problem(name, f"cannot be read: {exc}".splitlines()[0])]
    if not isinstance(raw, Located):
        return None, [Problem(name, "is not a mapping of languages, months and messages")]
    problems = _check_top(name, raw)
    if problems:
        return None, problems
    languages = tuple(raw["languages"])
    messages: dict[str, dict[str, Wordings]] = {}
    lines: dict[tuple[str, str], int] = {}
    for group in _GROUPS:
        problems += _read_group(name, raw, group, languages, messages, lines)
    months = _read_months(name, raw.get("months"), languages, problems)
    catalogue = Catalogue(name, languages, months, messages, lines)
    return (catalogue if not problems else None), problems


def _check_top(file: str, raw: Located) -> list[Problem]:
    problems = _unknown(file, raw, _TOP_KEYS, "top-level key")
    if raw.get("spec") != SPEC:
        problems.append(Problem(file, f"spec must be {SPEC}", line=raw.line_of("spec")))
    languages = raw.get("languages")
    if not (isinstance(languages, list) and all(isinstance(x, str) for x in languages)):
        return problems + [Problem(file, "languages must be a list of language codes")]
    missing = [lang for lang in accounts.LANGUAGES if lang not in languages]
    if missing:
        problems.append(
            Problem(
                file,
                f"languages must include every language a customer can choose "
                f"(missing {', '.join(missing)})",
                line=raw.line_of("languages"),
            )
        )
    return problems


def _read_group(
    file: str,
    raw: Located,
    group: str,
    languages: tuple[str, ...],
    messages: dict[str, dict[str, Wordings]],
    lines: dict[tuple[str, str], int],
) -> list[Problem]:
    body = raw.get(group)
    if not isinstance(body, Located):
        return [Problem(file, f"{group} must map message names to texts", line=raw.line_of(group))]
    names = tuple(key.split(".")[1] for key in MESSAGES if key.startswith(group + "."))
    problems = _unknown(file, body, names, f"{group} message")
    for name in names:
        key = f"{group}.{name}"
        if name not in body:
            problems.append(Problem(file, f"missing message {key}", line=body.line))
            continue
        wordings, found = _read_message(file, key, body[name], languages, body.line_of(name))
        messages[key] = wordings
        problems += found
        if isinstance(body[name], Located):
            lines.update({(key, lang): body[name].line_of(lang) for lang in languages})
    return problems


def _read_message(
    file: str, key: str, raw: Any, languages: tuple[str, ...], line: int
) -> tuple[dict[str, Wordings], list[Problem]]:
    if not isinstance(raw, Located):
        return {}, [Problem(file, f"{key} must map language codes to texts", line=line)]
    problems = [
        Problem(file, f"{key} is in a language the catalogue does not declare", language=str(lang))
        for lang in raw
        if lang not in languages
    ]
    wordings: dict[str, Wordings] = {}
    for lang in languages:
        value = raw.get(lang)
        texts = [value] if isinstance(value, str) else value
        at = raw.line_of(lang)
        if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
            problems.append(
                Problem(file, f"missing {key} (a text, or a list of them)", language=lang, line=at)
            )
            continue
        wordings[lang] = tuple(t.strip() for t in texts)
        problems += [
            Problem(file, message, language=lang, line=at)
            for text in texts
            for message in _text_problems(key, text)
        ]
    return wordings, problems


def _text_problems(key: str, text: str) -> list[str]:
    problems = []
    if not text.strip():
        problems.append(f"{key} is empty")
    foreign = sorted({c for c in text if c not in sms.GSM7_BASIC and c not in sms.GSM7_EXTENDED})
    if foreign:
        problems.append(
            f"{key} has characters outside the GSM-7 alphabet ({''.join(foreign)}): "
            "one of them makes the SMS hold 70 characters instead of 160"
        )
    problems += [
        f"{key} uses unknown placeholder {{{name}}} (it is given {', '.join(MESSAGES[key])})"
        for name in placeholders(text)
        if name not in MESSAGES[key]
    ]
    return problems


def _read_months(
    file: str, raw: Any, languages: tuple[str, ...], problems: list[Problem]
) -> dict[str, tuple[str, ...]]:
    months: dict[str, tuple[str, ...]] = {}
    for lang in languages:
        names = raw.get(lang) if isinstance(raw, dict) else None
        if not (isinstance(names, list) and len(names) == 12 and all(map(_month_ok, names))):
            line = raw.line_of(lang) if isinstance(raw, Located) else None
            problems.append(
                Problem(file, "months must be 12 short GSM-7 names", language=lang, line=line)
            )
            continue
        months[lang] = tuple(names)
    return months


def _month_ok(name: Any) -> bool:
    return isinstance(name, str) and bool(name.strip()) and sms.encoding(name) == "gsm7"


def _unknown(file: str, mapping: Located, allowed: tuple[str, ...], what: str) -> list[Problem]:
    return [
        Problem(file, f"unknown {what} {key!r} (known: {', '.join(allowed)})", line=line)
        for key, line in yamldoc.unknown_keys(mapping, allowed)
    ]
