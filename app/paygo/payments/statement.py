"""M-Pesa organisation portal statements: recover payments whose callbacks never came.

The export opens with a few preamble lines (organisation, PayBill, a blank line) before its
header; it lists charges and settlements as `Withdrawn` lines and failed attempts as
`Failed`; amounts may carry quoted thousands separators; the payer is often masked
(`2547****0001 - NAME`); times come as `DD-MM-YYYY HH:MM:SS` or `YYYY-MM-DD HH:MM:SS`.
Only `Completed` lines with `Paid In` are payments, and they go through the same path as
a callback, keyed on the receipt number, so importing twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from paygo.errors import ImportFailed
from paygo.payments.notice import NoticeStatus, PaymentNotice
from paygo.payments.providers.mpesa import CURRENCY, MPESA_TIMEZONE, MpesaProvider

HEADER_START = "Receipt No."
REQUIRED = ("Receipt No.", "Completion Time", "Details", "Paid In", "Other Party Info", "A/C No.")
_TIME_FORMATS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class StatementLine:
    """One payment line of a statement, as a notice and the raw row it came from."""

    line: int
    notice: PaymentNotice
    raw: str


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    skipped: int  # charges, settlements, failed attempts


def parse_statement(text: str) -> Statement:
    """Read a statement export; raise ImportFailed listing every unreadable payment line."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    start = next((i for i, row in enumerate(rows) if row and row[0].strip() == HEADER_START), None)
    if start is None:
        raise ImportFailed(
            f"no header line starting with {HEADER_START!r}: is this an "
            "M-Pesa organisation statement (CSV)?",
            problems=[(1, f"no {HEADER_START!r} header")],
        )
    header = [cell.strip() for cell in rows[start]]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ImportFailed(
            f"missing column(s): {', '.join(missing)}",
            problems=[(start + 1, f"missing column(s): {', '.join(missing)}")],
        )
    lines, problems, skipped = [], [], 0
    for number, row in enumerate(rows[start + 1 :], start=start + 2):
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        if not any(cells.values()):
            continue
        if not _is_payment(cells):
            skipped += 1
            continue
        try:
            lines.append(StatementLine(number, _notice(cells), json.dumps(cells)))
        except ValueError as exc:
            problems.append((number, str(exc)))
    if problems:
        raise ImportFailed(
            f"{len(problems)} unreadable payment line(s); nothing imported", problems=problems
        )
    return Statement(lines=lines, skipped=skipped)


def _is_payment(cells: dict[str, str]) -> bool:
    status = cells.get("Transaction Status", "Completed")
    paid_in = cells.get("Paid In", "").replace(",", "")
    return (
        status == "Completed" and paid_in not in ("", "0", "0.00") and not paid_in.startswith("-")
    )


def _notice(cells: dict[str, str]) -> PaymentNotice:
    receipt = cells.get("Receipt No.", "")
    if not receipt or len(receipt) > 80:
        raise ValueError("the receipt number is missing or too long")
    payer, _, name = cells.get("Other Party Info", "").partition(" - ")
    return PaymentNotice(
        provider=MpesaProvider.name,
        provider_txn_id=receipt,
        status=NoticeStatus.PAID,
        amount=cells["Paid In"],
        currency=CURRENCY,
        reference=cells.get("A/C No.", "")[:120] or None,
        payer=payer.strip()[:100] or None,
        payer_name=name.strip()[:120] or None,
        paid_at=parse_time(cells.get("Completion Time", "")),
    )


def parse_time(value: str) -> datetime:
    """A statement time (Nairobi) in either of the portal's formats, as aware UTC."""
    for fmt in _TIME_FORMATS:
        try:
            local = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=MPESA_TIMEZONE).astimezone(UTC)
    raise ValueError(f"completion time {value!r} is neither DD-MM-YYYY nor YYYY-MM-DD HH:MM:SS")
