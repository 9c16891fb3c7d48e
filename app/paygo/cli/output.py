"""How commands speak: human text by default, one JSON object with --json, errors on stderr."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

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
