"""Fault injection for crash tests: kill the process at a named point.

`PAYGO_FAULT=after_token` makes `point("after_token")` end the process at once, as a
power cut or an OOM kill would, so tests can prove a job re-run gives one result.
Unset (always, in production) it costs one environment lookup.
"""

from __future__ import annotations

import os


def point(name: str) -> None:
    """Die here if the environment asks for a fault at `name`."""
    if os.environ.get("PAYGO_FAULT") == name:
        os._exit(137)
