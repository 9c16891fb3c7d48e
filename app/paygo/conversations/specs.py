"""Flow file spec versions: the keys each version allows, and how an older file is migrated.

A flow file says which spec it is written in (`spec: 1`); a file without one is spec 0,
the format before versions. The reader migrates an older file step by step to the
current spec, in memory, then reads it with the current rules, so a distributor's old
file keeps working and `paygo flows check` says what would change (as goflow migrates
flow definitions between its spec versions).

Spec 1 (current):
- the top level is a closed set of keys: anything else is an error, with its line;
- an SMS flow's keywords and language names live in one `commands` section.

Spec 0: `keywords` and `language_names` were top-level keys, and any unknown top-level key
(or state, option or input key) was silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from paygo.yamldoc import Located

CURRENT = 1

TOP_KEYS = ("spec", "flow", "channel", "languages", "start", "home", "strings", "states")
#: Only on an SMS flow: the command words customers send.
COMMANDS_KEY = "commands"
COMMANDS_KEYS = ("keywords", "language_names")
#: The keys each kind of state takes.
STATE_KEYS = {
    "menu": ("kind", "text", "options", "items", "store", "next"),
    "input": ("kind", "text", "input", "store", "next", "error"),
    "action": ("kind", "action", "next", "branches"),
    "end": ("kind", "text"),
}
#: Keys validation already names a clearer problem for, when on the wrong kind of state.
SHAPE_CHECKED = ("options", "items", "next", "branches")
OPTION_KEYS = ("text", "next", "value")
INPUT_KEYS = ("type", "min_length", "max_length", "max")


def _from_0(raw: Located) -> list[str]:
    """Spec 0 to 1: gather the SMS command words under `commands`."""
    moved = [key for key in COMMANDS_KEYS if key in raw]
    if not moved:
        return []
    commands = Located()
    commands.line = raw.line_of(moved[0])
    for key in moved:
        commands[key] = raw.pop(key)
        commands.key_lines[key] = raw.key_lines.pop(key, raw.line)
    raw[COMMANDS_KEY] = commands
    raw.key_lines[COMMANDS_KEY] = commands.line
    return [f"moved {' and '.join(moved)} under {COMMANDS_KEY}"]


#: spec N -> the step that rewrites a spec N file as spec N + 1 (in place), saying what changed.
MIGRATIONS: dict[int, Callable[[Located], list[str]]] = {0: _from_0}


def migrate(raw: Located, spec: int) -> list[str]:
    """Rewrite a spec `spec` file as the current spec, in place; what each step changed."""
    notes: list[str] = []
    for version in range(spec, CURRENT):
        notes += MIGRATIONS[version](raw)
    raw["spec"] = CURRENT
    return notes
