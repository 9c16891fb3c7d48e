"""How commands speak: human text by default, one JSON object with --json, errors on stderr."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import DBAPIError, IntegrityError

from paygo.errors import GatewayError, ImportFailed

P = ParamSpec("P")
R = TypeVar("R")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of text."
)


def emit(as_json: bool, data: dict[str, Any], *lines: str) -> None:
    """Print `data` as JSON, or the human lines."""
    if as_json:
        click.echo(json.dumps(data, default=str, sort_keys=True))
    else:
        for line in lines:
            click.echo(line)


def fail(message: str, code: int = 1) -> NoReturn:
    """Report an error on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn gateway errors into a one-line message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ImportFailed as exc:
            for line, problem in exc.problems:
                click.echo(f"error: line {line}: {problem}", err=True)
            fail(f"{len(exc.problems)} bad row(s); nothing was imported")
        except GatewayError as exc:
            fail(exc.message)
        except IntegrityError as exc:
            fail(f"the database refused the change, nothing was written: {_orig(exc)}")
        except DBAPIError as exc:
            fail(f"database error: {_orig(exc)}; check DATABASE_URL and run `paygo db upgrade`")
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))

    return wrapper


def _orig(exc: DBAPIError) -> str:
    # The driver's own message only: SQLAlchemy's text adds the statement and its
    # parameters, which may hold sealed device keys.
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__


# --- lists and tables --------------------------------------------------------------------


def page_options(func: Callable[P, R]) -> Callable[P, R]:
    """--limit and --cursor, for a command that prints one page of a list."""
    from paygo.pages import DEFAULT_LIMIT, MAX_LIMIT

    func = click.option(
        "--cursor", default=None, help="Continue a list: the `next` of the page before."
    )(func)
    return click.option(
        "--limit",
        type=click.IntRange(1, MAX_LIMIT),
        default=DEFAULT_LIMIT,
        show_default=True,
        help="How many to show.",
    )(func)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Rows under headers in aligned columns; columns of numbers to the right."""
    values = [list(row) for row in rows]
    cells = [[_cell(v) for v in row] for row in values]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [_numbers([row[i] for row in values]) for i in range(len(headers))]

    def line(texts: Sequence[str], right: Sequence[bool]) -> str:
        padded = [
            t.rjust(w) if r else t.ljust(w) for t, w, r in zip(texts, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return [line(list(headers), numeric), *(line(r, numeric) for r in cells)]


def _cell(value: object) -> str:
    if isinstance(value, datetime):
        return moment(value)
    return " ".join(str("" if value is None else value).split()) or "-"


def _numbers(column: list[object]) -> bool:
    """A column of counts and amounts (ints, floats), not of digit strings such as accounts."""
    given = [v for v in column if v is not None]
    return bool(given) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in given
    )


def emit_page(
    as_json: bool,
    name: str,
    items: list[dict[str, Any]],
    next_cursor: str | None,
    lines: list[str],
    empty: str,
) -> None:
    """Print one page: `{name: [...], "next": cursor}` as JSON, or the lines and how to go on."""
    if as_json:
        emit(True, {name: items, "next": next_cursor})
        return
    emit(False, {}, *(lines if items else [empty]))
    if next_cursor:
        click.echo(f"more: add --cursor {next_cursor}")


# --- dates -------------------------------------------------------------------------------


def _use_utc(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["paygo.utc"] = True


utc_option = click.option(
    "--utc",
    is_flag=True,
    expose_value=False,
    callback=_use_utc,
    help="Show times in UTC (default: DEFAULT_TIMEZONE, the distributor's).",
)


def display_zone() -> str:
    """The zone operators read times in: DEFAULT_TIMEZONE, or UTC with --utc."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("paygo.utc"):
        return "UTC"
    from paygo.cli.context import current_gateway

    return current_gateway().settings.default_timezone


def moment(value: datetime | None, zone: str | None = None) -> str:
    """A time as an operator reads it, naming its zone: `2026-11-20 13:15 EAT`."""
    if value is None:
        return "-"
    local = value.astimezone(ZoneInfo(zone or display_zone()))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone}"


since_option = click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="From this day or time (in DEFAULT_TIMEZONE, or UTC with --utc).",
)


def local(value: datetime | None) -> datetime | None:
    """A day or time typed by an operator, read in the zone they see times in."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(display_zone()))


def short(text: str | None, width: int = 50) -> str:
    """Text on one line, cut to `width` with `...`."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
