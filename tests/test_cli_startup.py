"""The `paygo` command line itself: its help, version, `dev` group, `.env` file, the
instance folder, what it imports to start, and `make run`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import requests
from click.testing import CliRunner
from flask.testing import FlaskCliRunner

from paygo.cli import COMMANDS, cli, load_command
from paygo.settings import VARIABLES, default_instance_path, load_settings
from tests.conftest import TEST_SETTINGS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**env, "PAYGO_INSTANCE_PATH": str(tmp_path / "instance"), **extra}


def _paygo(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "paygo"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- help, version, dev ------------------------------------------------------------------


def test_help_lists_every_command_with_its_own_one_line_description() -> None:
    shown = CliRunner().invoke(cli, ["--help"], prog_name="paygo")
    assert shown.exit_code == 0
    for name in COMMANDS:
        command = load_command(name)
        summary = command.get_short_help_str(limit=200)
        assert summary == COMMANDS[name][1], f"paygo --help says another thing of {name}"
        assert f"  {name}  " in shown.output
    # Flask's own commands and options are only under `paygo dev`.
    lines = shown.output.splitlines()
    assert not any(line.split()[:1] in (["run"], ["shell"], ["routes"]) for line in lines)
    for option in ("--app", "--env-file", "--debug", "-A", "-e"):
        assert option not in shown.output


def test_dev_groups_flasks_server_shell_and_routes(runner: FlaskCliRunner) -> None:
    listed = runner.invoke(args=["dev", "--help"])
    assert listed.exit_code == 0
    assert {"run", "shell", "routes"} <= set(listed.output.split())
    routes = runner.invoke(args=["dev", "routes"])
    assert routes.exit_code == 0, routes.output
    assert "/healthz" in routes.output and "/payments/" in routes.output


def test_version_prints_the_projects_version() -> None:
    from importlib.metadata import version

    shown = CliRunner().invoke(cli, ["--version"], prog_name="paygo")
    assert shown.output == f"paygo, version {version('paygo-gateway')}\n"


def test_an_unknown_command_is_a_usage_error_naming_it() -> None:
    shown = CliRunner().invoke(cli, ["acounts"], prog_name="paygo")
    assert shown.exit_code == 2
    assert "No such command 'acounts'" in shown.output


# --- what starting costs -----------------------------------------------------------------

_LOADED = (
    "import atexit, sys\n"
    "heavy = ('flask', 'sqlalchemy', 'pydantic', 'rq', 'redis', 'requests', 'cryptography')\n"
    "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules), "
    "file=sys.stderr))\n"
    "sys.argv = ['paygo', *sys.argv[1:]]\n"
    "from paygo.cli import main\n"
    "main()\n"
)


def _loaded(*args: str, env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))
    return loaded


def test_help_imports_no_framework_and_show_no_web_app(
    runner: FlaskCliRunner, database_url: str, tmp_path: Path
) -> None:
    env = _environ(tmp_path)
    assert _loaded("--help", env=env, cwd=tmp_path) == []
    assert "flask" not in _loaded("accounts", "--help", env=env, cwd=tmp_path)
    number = _demo_account(runner)
    env = _environ(
        tmp_path, DATABASE_URL=database_url, PAYGO_MASTER_KEY=str(TEST_SETTINGS["master_key"])
    )
    # What showing an account needs: the settings and the database, no web app, no queue.
    assert _loaded("accounts", "show", number, env=env, cwd=tmp_path) == ["pydantic", "sqlalchemy"]


def _demo_account(runner: FlaskCliRunner) -> str:
    done = runner.invoke(args=["demo", "--json"])
    assert done.exit_code == 0, done.output
    number: str = json.loads(done.stdout)["accounts"][0]
    return number


# --- .env and the instance folder ---------------------------------------------------------


def test_a_dotenv_file_here_or_above_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite:///{tmp_path}/from-dotenv.sqlite3\nDISTRIBUTOR_NAME=Dotenv Solar\n"
    )
    below = tmp_path / "below"
    below.mkdir()
    done = _paygo("db", "upgrade", "--json", cwd=below, env=_environ(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["database"] == f"sqlite:///{tmp_path}/from-dotenv.sqlite3"
    chosen = f"sqlite:///{tmp_path}/from-environment.sqlite3"
    done = _paygo("db", "upgrade", "--json", cwd=below, env=_environ(tmp_path, DATABASE_URL=chosen))
    assert json.loads(done.stdout)["database"] == chosen


def test_without_a_dotenv_file_nothing_is_read(tmp_path: Path) -> None:
    done = _paygo("db", "upgrade", "--json", cwd=tmp_path, env=_environ(tmp_path))
    assert done.returncode == 0, done.stderr
    expected = f"sqlite:///{tmp_path / 'instance' / 'paygo.sqlite3'}"
    assert json.loads(done.stdout)["database"] == expected


def test_a_checkout_keeps_its_state_in_its_instance_folder() -> None:
    assert default_instance_path() == str(REPO / "instance")
    settings = load_settings(environ={})
    assert settings.database_url == f"sqlite:///{REPO / 'instance' / 'paygo.sqlite3'}"


def test_a_relative_instance_path_is_made_absolute(tmp_path: Path) -> None:
    here = Path.cwd()
    try:
        os.chdir(tmp_path)
        settings = load_settings(environ={"PAYGO_INSTANCE_PATH": "state"})
    finally:
        os.chdir(here)
    assert settings.instance_path == str(tmp_path.resolve() / "state")


# --- make run ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_make_run_serves_on_port_from_the_environment_and_takes_the_readme_curl(
    tmp_path: Path,
) -> None:
    port = _free_port()
    env = _environ(tmp_path, PORT=str(port), HOST="127.0.0.1")
    env.pop("MAKEFLAGS", None)
    server = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed-run", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        account = _first_demo_account(server)
        _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        confirmation = {
            "TransID": "RKTQDM7W6S",
            "TransAmount": "150",
            "BillRefNumber": f"{account[:4]} {account[4:]}",
            "MSISDN": "254711000001",
            "TransTime": "20261120101502",
            "BusinessShortCode": "600638",
            "TransactionType": "Pay Bill",
            "FirstName": "Wanjiku",
        }
        reply = requests.post(
            f"http://127.0.0.1:{port}/payments/mpesa/demo-mpesa/confirmation",
            json=confirmation,
            timeout=30,
        )
        assert reply.status_code == 200
        assert reply.json()["ResultCode"] == 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()


def _first_demo_account(server: subprocess.Popen[str]) -> str:
    assert server.stdout is not None
    for line in server.stdout:
        if line.strip().isdigit():
            return line.strip()
        if server.poll() is not None:
            break
    raise AssertionError("make run printed no demo account")


def _wait_for(url: str, server: subprocess.Popen[str]) -> None:
    """Poll until the server answers (it starts in a second or two; a busy CI takes longer)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, "make run exited"
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_every_command_group_says_what_it_holds() -> None:
    for name in COMMANDS:
        command = load_command(name)
        assert isinstance(command, click.Command)
        assert command.help and command.help.strip(), f"{name} has no help"
