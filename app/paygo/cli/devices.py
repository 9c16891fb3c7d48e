"""`paygo devices`: the fleet, in and out in the OpenPAYGO factory format."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlmodel import col, select

from paygo import devices
from paygo.cli.output import emit, fail, handles_errors, json_option
from paygo.extensions import current_gateway
from paygo.models import Device, DeviceStatus


@click.group("devices")
def devices_group() -> None:
    """Import, export and list devices."""


@devices_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@with_appcontext
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
@with_appcontext
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
@json_option
@with_appcontext
@handles_errors
def list_(status: str | None, as_json: bool) -> None:
    """List devices (never their keys)."""
    with current_gateway().db.session() as session:
        query = select(Device).order_by(col(Device.serial))
        if status:
            query = query.where(Device.status == status)
        rows = [d.model_dump(exclude={"secret_key_encrypted"}) for d in session.exec(query)]
    lines = [f"{r['serial']}  {r['status']:<12} count {r['token_count']}" for r in rows]
    emit(as_json, {"devices": rows}, *(lines or ["no devices"]))


commands = [devices_group]
