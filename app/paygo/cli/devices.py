"""`paygo devices`: the fleet, in and out in the OpenPAYGO factory format."""

from __future__ import annotations

import csv
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from paygo import devices
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    fail,
    handles_errors,
    json_option,
    page_options,
    table,
    utc_option,
)
from paygo.metrics import store as metrics
from paygo.models import DeviceStatus, utcnow


@click.group("devices")
def devices_group() -> None:
    """Import, export and list devices; move connected boxes to another server."""


@devices_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@handles_errors
def import_(path: Path, as_json: bool) -> None:
    """Import devices from an OpenPAYGO factory CSV (all or nothing; re-import is harmless)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text; save it as UTF-8 CSV and import it again")
    rows = devices.parse_factory_csv(text)
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        if sys.stdout.isatty() and not as_json:
            with click.progressbar(length=len(rows), label="importing") as bar:
                result = devices.import_devices(
                    session=session, keys=gateway.keys, rows=rows, progress=bar.update
                )
        else:
            result = devices.import_devices(session=session, keys=gateway.keys, rows=rows)
    data = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    emit(
        as_json,
        data,
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged",
    )


@devices_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@handles_errors
def export(path: Path, as_json: bool) -> None:
    """Write every device with its current count, in the factory format (includes keys)."""
    gateway = current_gateway()
    # Decrypt every key before touching the file, so a wrong master key leaves no half file.
    with gateway.db.session() as session:
        rows = list(devices.export_devices(session=session, keys=gateway.keys))
    # The file holds every device key: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    count = len(rows) - 1
    emit(as_json, {"exported": count, "path": str(path)}, f"{count} devices written to {path}")


@devices_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in DeviceStatus]), default=None)
@click.option(
    "--silent", is_flag=True, help="Only connected boxes silent past METRICS_SILENT_AFTER_HOURS."
)
@page_options
@utc_option
@json_option
@handles_errors
def list_(status: str | None, silent: bool, limit: int, cursor: str | None, as_json: bool) -> None:
    """List devices (never their keys), with when each connected box last reported."""
    gateway = current_gateway()
    now = utcnow()
    after = timedelta(hours=gateway.settings.metrics_silent_after_hours)
    with gateway.db.session() as session:
        found = metrics.reports(session=session, now=now, silent_after=after)
        listed = devices.list_devices(
            session=session,
            status=status,
            ids=[i for i, report in found.items() if report.silent] if silent else None,
            limit=limit,
            cursor=cursor,
        )
        rows = [
            d.model_dump(exclude={"secret_key_encrypted"}) | _connection(found.get(d.id or 0))
            for d in listed.items
        ]
    lines = table(
        ["SERIAL", "STATUS", "COUNT", "MODEL", "LAST REPORT", "MOVING TO"],
        [
            (
                r["serial"],
                r["status"],
                r["token_count"],
                r["hardware_model"],
                _reported(r, now),
                r["moving_to"],
            )
            for r in rows
        ],
    )
    emit_page(as_json, "devices", rows, listed.next, lines, "no devices")


def _connection(report: metrics.Report | None) -> dict[str, Any]:
    """What a listing says of a box's OpenPAYGO Metrics reports (nothing: never reported)."""
    return {
        "last_report_at": report.last_seen_at if report else None,
        "silent": bool(report and report.silent),
        "reported_token_count": report.reported_token_count if report else None,
        "moving_to": report.base_url if report else None,
    }


def _reported(row: dict[str, Any], now: datetime) -> str | None:
    if row["last_report_at"] is None:
        return None
    age = _age(now - row["last_report_at"])
    return f"SILENT: no report for {age}" if row["silent"] else f"reported {age} ago"


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d {hours % 24} h"


@devices_group.command("move-server")
@click.argument("serial")
@click.argument("url", required=False)
@click.option("--cancel", is_flag=True, help="Stop sending a move the box has not acted on.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@json_option
@handles_errors
def move_server(serial: str, url: str | None, cancel: bool, reason: str, as_json: bool) -> None:
    """Move a connected box to another Metrics server: its answers carry URL as base_url."""
    if cancel == bool(url):
        fail("give the new server's base URL, or --cancel")
    with current_gateway().db.transaction() as session:
        box = metrics.move_server(
            session=session,
            serial=serial,
            base_url=None if cancel else url,
            reason=reason,
            actor="cli",
            now=utcnow(),
        )
    data = {"serial": serial.strip(), "base_url": box.base_url}
    if box.base_url:
        emit(as_json, data, f"{serial}: its next answer carries base_url {box.base_url}")
    else:
        emit(as_json, data, f"{serial}: the move is cancelled; answers carry no base_url")


commands = [devices_group]
