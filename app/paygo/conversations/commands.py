"""SMS commands: `BAL`, `SALIO 10000018`, `lang sw`... read with the keywords the SMS flow
file declares, so a distributor adds a keyword without touching Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paygo.conversations.definitions import Flow
from paygo.yamldoc import Problem

COMMANDS = ("balance", "token", "pay", "help", "language")
#: Inbound texts are short; anything past this is not a command worth reading.
MAX_TEXT = 320


@dataclass(frozen=True)
class Command:
    """A parsed SMS: the command, its optional argument, the language its keyword is in."""

    name: str
    account_arg: str = ""
    language_arg: str = ""
    keyword_lang: str | None = None

    def data(self) -> dict[str, str]:
        """The command as flow data for the `sms_start` action."""
        return {
            "command": self.name,
            "account_arg": self.account_arg,
            "language_arg": self.language_arg,
        }


@dataclass(frozen=True)
class Keywords:
    """Keyword -> (command, language), and language name -> language code."""

    commands: Mapping[str, tuple[str, str]]
    languages: Mapping[str, str]

    @classmethod
    def from_flow(cls, flow: Flow) -> Keywords:
        """Read the `keywords` and `language_names` of the SMS flow's `commands`."""
        commands: dict[str, tuple[str, str]] = {}
        for command, by_lang in (flow.commands.get("keywords") or {}).items():
            for lang, words in by_lang.items():
                for word in words:
                    commands[_squash(str(word))] = (str(command), str(lang))
        languages = {
            _squash(str(word)): str(lang)
            for lang, words in (flow.commands.get("language_names") or {}).items()
            for word in words
        }
        return cls(commands=commands, languages=languages)

    def parse(self, text: str) -> Command:
        """Read one SMS; unknown text is a request for help.

        Spaces do not matter ("bal 1000 0018", "BAL10000018"): the longest keyword the
        squashed text starts with is the command, the rest its argument.
        """
        squashed = _squash(text[:MAX_TEXT])
        for keyword in sorted(self.commands, key=len, reverse=True):
            if keyword and squashed.startswith(keyword):
                command, lang = self.commands[keyword]
                rest = squashed[len(keyword) :]
                break
        else:
            return Command(name="help")
        if command == "language":
            return Command(
                name=command, language_arg=self.languages.get(rest, ""), keyword_lang=lang
            )
        # "BAL acc 1000-0018": keep the digits the customer meant.
        digits = "".join(c for c in rest if c.isascii() and c.isdigit())
        return Command(name=command, account_arg=digits, keyword_lang=lang)


def _squash(word: str) -> str:
    return "".join(word.split()).upper().strip(".,!?:;#")


def check_keywords(flow: Flow) -> list[Problem]:
    """Problems with the SMS flow's keywords: each command in each language, no clashes."""
    raw: Any = flow.commands.get("keywords")
    if not isinstance(raw, dict):
        return [Problem(flow.path, "keywords must map each command to words per language")]
    problems = []
    seen: dict[str, str] = {}
    for command in COMMANDS:
        by_lang = raw.get(command)
        for lang in flow.languages:
            words = by_lang.get(lang) if isinstance(by_lang, dict) else None
            if not (isinstance(words, list) and words):
                problems.append(
                    Problem(flow.path, f"no keyword for command {command}", language=lang)
                )
                continue
            for word in map(_squash, map(str, words)):
                if seen.setdefault(word, command) != command:
                    problems.append(
                        Problem(
                            flow.path,
                            f"keyword {word} means both {seen[word]} and {command}",
                            language=lang,
                        )
                    )
    unknown = sorted(set(raw) - set(COMMANDS))
    problems += [Problem(flow.path, f"unknown command {c!r} in keywords") for c in unknown]
    return problems
