"""`paygo flows check`: validate the flow files and the texts catalogue without starting
the gateway.

It works while they are broken (when the app itself refuses to start), so it reads the
settings on its own rather than through the app. The texts checked are those the gateway
would use: `texts.yaml` in the flows folder when it has one, else the shipped catalogue.
"""

from __future__ import annotations

from pathlib import Path

import click

from paygo.cli.output import emit, handles_errors, json_option
from paygo.conversations.actions import ACTIONS
from paygo.conversations.commands import check_keywords
from paygo.conversations.definitions import Flow
from paygo.conversations.service import SMS_FLOW, constants, flows_dir, texts_path
from paygo.conversations.specs import CURRENT
from paygo.conversations.validation import check_directory
from paygo.settings import load_settings
from paygo.texts.check import check_texts


@click.group("flows")
def flows_group() -> None:
    """Check the USSD menus, SMS replies (flows/*.yaml) and texts (flows/texts.yaml)."""


@flows_group.command("check")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of flow files, and of a texts.yaml replacing the shipped one "
    "(default: FLOWS_DIR or flows/).",
)
@json_option
@handles_errors
def check(directory: Path | None, as_json: bool) -> None:
    """Validate every flow (targets, reachability, dead ends, actions, languages, screen
    lengths) and every text (languages, placeholders, GSM-7, one SMS)."""
    settings = load_settings()
    if directory is not None:
        settings = settings.model_copy(update={"flows_dir": str(directory)})
    folder = flows_dir(settings)
    flows, problems = check_directory(folder, ACTIONS, constants(settings))
    if SMS_FLOW in flows:
        problems += check_keywords(flows[SMS_FLOW])
    texts, text_problems = check_texts(texts_path(settings), constants(settings))
    problems += text_problems
    lines = [str(p) for p in problems] or [_summary(flow) for flow in flows.values()]
    if texts is not None and not problems:
        lines.append(
            f"{texts.path}: ok ({len(texts.messages)} messages, {', '.join(texts.languages)})"
        )
    emit(
        as_json,
        {
            "directory": str(folder),
            "ok": not problems,
            "flows": sorted(f.path for f in flows.values()),
            "texts": str(texts_path(settings)),
            "problems": [str(p) for p in problems],
            "migrated": {f.path: list(f.migrated) for f in flows.values() if f.spec < CURRENT},
        },
        *lines,
    )
    if problems:
        raise SystemExit(1)


def _summary(flow: Flow) -> str:
    line = f"{flow.path}: ok ({len(flow.states)} states, {', '.join(flow.languages)})"
    if flow.spec < CURRENT:
        changes = "; ".join(flow.migrated) or "nothing else changes"
        line += f"\n  written in spec {flow.spec}, read as spec {CURRENT}: {changes}"
    return line


commands = [flows_group]
