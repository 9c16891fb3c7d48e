"""Generate an Alembic revision from the models (developer tool: `make migration m=...`)."""

from __future__ import annotations

import sys

from alembic import command

from paygo.cli.db import alembic_config
from paygo.settings import load_settings


def main() -> None:
    message = " ".join(sys.argv[1:]) or "schema change"
    command.revision(
        alembic_config(load_settings().database_url), message=message, autogenerate=True
    )


if __name__ == "__main__":
    main()
