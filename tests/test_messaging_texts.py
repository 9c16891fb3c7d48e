"""SMS length rules, reminder texts in three languages, quiet hours (no database)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from typing import TypedDict

import pytest

from paygo.messaging import quiet
from paygo.texts import reminders, sms
from paygo.texts.catalogue import shipped

NAIROBI = zoneinfo.ZoneInfo("Africa/Nairobi")


class ReminderValues(TypedDict, total=False):
    """The reminders' placeholders, typed so `**values` cannot fill `max_parts` or `texts`."""

    distributor: str
    paybill: str
    account: str
    date: str


LONG_VALUES: ReminderValues = {
    "distributor": "SunPower Solar Kenya",
    "paybill": "4123456",
    "account": "123456789012",
}


def test_plain_text_is_gsm7_and_fits_160_characters() -> None:
    assert sms.encoding("Lipa kwa PayBill 600638") == "gsm7"
    assert sms.parts("a" * 160) == 1
    assert sms.parts("a" * 161) == 2
    assert sms.parts("a" * 306) == 2 and sms.parts("a" * 307) == 3


def test_extension_characters_count_twice() -> None:
    assert sms.units("€") == 2
    assert sms.parts("[" * 80) == 1 and sms.parts("[" * 81) == 2


def test_one_non_gsm_character_makes_the_whole_text_ucs2() -> None:
    text = "Août " + "a" * 60
    assert sms.encoding(text) == "ucs2"
    assert sms.parts("ê" * 70) == 1 and sms.parts("ê" * 71) == 2


def test_truncate_cuts_to_the_allowed_parts_and_says_so() -> None:
    cut = sms.truncate("word " * 80, max_parts=1)
    assert sms.parts(cut) == 1 and cut.endswith("...")
    assert len(sms.truncate("ê" * 200, max_parts=1)) == 70
    assert sms.truncate("short", 1) == "short"
    assert sms.parts(sms.truncate("x" * 1000, max_parts=3)) == 3


@pytest.mark.parametrize("kind", sorted(reminders.KINDS))
@pytest.mark.parametrize("lang", shipped().languages)
def test_every_reminder_fits_one_gsm7_sms_with_long_values(kind: str, lang: str) -> None:
    for month in range(1, 13):
        text = reminders.render(
            kind,
            lang,
            texts=shipped(),
            date=shipped().day_month(date(2026, month, 28), lang),
            **LONG_VALUES,
        )
        assert sms.encoding(text) == "gsm7", text
        assert sms.parts(text) == 1, text
        assert not text.endswith("..."), text


def test_reminders_speak_the_customers_language() -> None:
    values: ReminderValues = {"date": "2 Des", **LONG_VALUES}
    assert "Lipa kwa PayBill" in reminders.render("expiry", "sw", texts=shipped(), **values)
    assert "Payez au PayBill" in reminders.render("expiry", "fr", texts=shipped(), **values)
    assert "Pay to PayBill" in reminders.render("expiry", "en", texts=shipped(), **values)
    assert shipped().day_month(date(2026, 8, 1), "fr") == "1 aout"
    assert shipped().day_month(date(2026, 12, 1), "sw") == "1 Des"


def test_an_unknown_language_falls_back_to_the_default_then_english() -> None:
    assert shipped().language("de", "sw") == "sw"
    assert shipped().language(None, "xx") == "en"


def test_a_text_too_long_for_the_allowed_parts_is_cut() -> None:
    values: ReminderValues = {**LONG_VALUES, "distributor": "X" * 150, "date": "1 Jan"}
    assert sms.parts(reminders.render("expiry", "en", texts=shipped(), **values)) == 1
    assert sms.parts(reminders.render("expiry", "en", texts=shipped(), max_parts=2, **values)) == 2


@pytest.mark.parametrize(
    ("hour", "quiet_now"), [(19, False), (20, True), (23, True), (0, True), (6, True), (7, False)]
)
def test_quiet_hours_cross_midnight(hour: int, quiet_now: bool) -> None:
    assert quiet.is_quiet(hour, 20, 7) is quiet_now


def test_quiet_hours_that_do_not_cross_midnight_and_none_at_all() -> None:
    assert quiet.is_quiet(13, 12, 14) and not quiet.is_quiet(14, 12, 14)
    assert not any(quiet.is_quiet(h, 5, 5) for h in range(24))


def test_a_reminder_at_night_waits_for_seven_in_the_morning_local_time() -> None:
    # 22:30 in Nairobi (UTC+3) is 19:30 UTC: next allowed is 07:00 Nairobi, 04:00 UTC.
    now = datetime(2026, 3, 10, 19, 30, tzinfo=UTC)
    assert quiet.next_allowed(now, NAIROBI, 20, 7) == datetime(2026, 3, 11, 4, 0, tzinfo=UTC)
    early = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 05:00 in Nairobi, same morning
    assert quiet.next_allowed(early, NAIROBI, 20, 7) == datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    day = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert quiet.next_allowed(day, NAIROBI, 20, 7) == day


def test_quiet_hours_follow_the_customers_timezone() -> None:
    now = datetime(2026, 3, 10, 18, 30, tzinfo=UTC)  # 21:30 Nairobi, 19:30 Kinshasa
    assert quiet.next_allowed(now, NAIROBI, 20, 7) > now
    assert quiet.next_allowed(now, zoneinfo.ZoneInfo("Africa/Kinshasa"), 20, 7) == now


def test_an_unknown_timezone_falls_back_to_the_default() -> None:
    assert quiet.zone("Mars/Olympus", "Africa/Nairobi") == NAIROBI
    assert quiet.zone(None, "nonsense") == zoneinfo.ZoneInfo("UTC")
