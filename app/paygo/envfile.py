"""The `.env` file `.env.example` invites: read into the environment before the settings.

A variable already in the environment wins over the file, as a platform's config should.
"""

from __future__ import annotations

import os


def read_dotenv() -> str | None:
    """Load `.env` from the current folder or the nearest one above it; return its path."""
    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(usecwd=True)
    if not path or not os.path.isfile(path):
        return None
    load_dotenv(path, override=False)
    return path
