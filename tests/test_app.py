"""The application factory: refuses unsafe production settings; answers /healthz."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from paygo import create_app
from paygo.backplane import DatabaseBackplane
from paygo.errors import ConfigurationError
from paygo.settings import DEFAULT_MASTER_KEY, DEFAULT_SECRET_KEY, VARIABLES

REAL_SECRETS = {
    "SECRET_KEY": "a-real-secret-key-0123456789",
    "PAYGO_MASTER_KEY": "a-real-master-key-0123456789",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment holding none of our settings, with the instance in a temp folder."""
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PAYGO_INSTANCE_PATH", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SECRET_KEY": REAL_SECRETS["SECRET_KEY"]}, "PAYGO_MASTER_KEY"),
        ({**REAL_SECRETS, "PAYGO_MASTER_KEY": DEFAULT_MASTER_KEY}, "PAYGO_MASTER_KEY"),
        ({**REAL_SECRETS, "PAYGO_MASTER_KEY": ""}, "PAYGO_MASTER_KEY"),
        ({"PAYGO_MASTER_KEY": REAL_SECRETS["PAYGO_MASTER_KEY"]}, "SECRET_KEY"),
        ({**REAL_SECRETS, "SECRET_KEY": DEFAULT_SECRET_KEY}, "SECRET_KEY"),
    ],
)
def test_production_refuses_to_start_with_a_missing_or_default_secret_and_names_it(
    clean_env: pytest.MonkeyPatch, environ: dict[str, str], named: str
) -> None:
    clean_env.setenv("PAYGO_ENV", "production")
    for var, value in environ.items():
        clean_env.setenv(var, value)
    with pytest.raises(ConfigurationError) as caught:
        create_app()
    assert caught.value.setting == named
    assert named in str(caught.value)


def test_production_refuses_default_secrets_given_as_test_config(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="PAYGO_MASTER_KEY"):
        create_app({"env": "production", "secret_key": REAL_SECRETS["SECRET_KEY"]})


def test_production_starts_with_real_secrets(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PAYGO_ENV", "production")
    for var, value in REAL_SECRETS.items():
        clean_env.setenv(var, value)
    app = create_app()
    assert app.config["SECRET_KEY"] == REAL_SECRETS["SECRET_KEY"]
    app.extensions["paygo"].db.dispose()


def test_development_starts_on_sqlite_in_the_instance_folder(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = create_app()
    gateway = app.extensions["paygo"]
    assert gateway.settings.database_url == f"sqlite:///{tmp_path.resolve()}/paygo.sqlite3"
    assert isinstance(gateway.backplane, DatabaseBackplane)  # no Redis: jobs run inline
    gateway.db.dispose()


def test_healthz_answers_ok_when_the_database_responds(client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_checks_redis_when_it_is_configured(redis_app: Flask) -> None:
    reply = redis_app.test_client().get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_healthz_is_degraded_when_redis_does_not_answer(make_app: Callable[..., Flask]) -> None:
    app = make_app(redis_url="redis://127.0.0.1:1/0")
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")


def test_healthz_is_degraded_when_the_database_does_not_answer(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(database_url="postgresql://postgres@127.0.0.1:1/nothing")
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 503
    assert reply.get_json()["checks"]["database"].startswith("error: ")


def test_an_unknown_url_gets_a_json_404(client: FlaskClient) -> None:
    reply = client.get("/no-such-page")
    assert reply.status_code == 404
    assert reply.get_json()["error"] == "not_found"
