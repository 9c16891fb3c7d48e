"""Reminder texts from the catalogue: credit about to end, and out of light since a day."""

from __future__ import annotations

from paygo.texts import sms
from paygo.texts.catalogue import Catalogue
from paygo.texts.placeholders import fill

KINDS = ("expiry", "out_of_light")


def render(kind: str, lang: str, *, texts: Catalogue, max_parts: int = 1, **values: str) -> str:
    """A reminder in the customer's language, cut to fit `max_parts` SMS parts."""
    wordings = [fill(text, values) for text in texts.wordings(f"reminder.{kind}", lang)]
    fitting = [text for text in wordings if sms.fits(text, max_parts)]
    return fitting[0] if fitting else sms.truncate(wordings[-1], max_parts)
