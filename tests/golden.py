"""Golden transcripts: one file per flow and case under tests/transcripts/.

Compare with `check_transcript`; rewrite them on purpose with `pytest --update-transcripts`
after changing a flow, then read the diff before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


def check_transcript(request: pytest.FixtureRequest, flow: str, case: str, text: str) -> None:
    """Assert `text` equals the golden file (or write it with --update-transcripts)."""
    path = TRANSCRIPTS / flow / f"{case}.txt"
    header = f"# {flow} flow, case {case}: inputs after >>>, then the screen sent back\n"
    if request.config.getoption("--update-transcripts"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(
            f"no transcript {path.relative_to(TRANSCRIPTS.parent)}; "
            "write it with pytest --update-transcripts and review it"
        )
    assert header + text == path.read_text(encoding="utf-8")
