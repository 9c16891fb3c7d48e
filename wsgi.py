"""WSGI entry point from a checkout: `gunicorn wsgi:app` or `flask --app wsgi run`."""

from paygo.wsgi import app

__all__ = ["app"]
