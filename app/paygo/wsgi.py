"""WSGI entry point of the installed package: `gunicorn paygo.wsgi:app`."""

from paygo import create_app

app = create_app()
