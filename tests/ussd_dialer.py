"""`UssdDialer`: dials a USSD code and answers screens like a phone on Africa's Talking.

Each answer is appended to `text` with `*`, as the network does, and posted as one hop.
"""

from __future__ import annotations

import itertools

from flask.testing import FlaskClient

_sessions = itertools.count(1)
SERVICE_CODE = "*384*4321#"
MAX_REPLY = 182


class UssdDialer:
    """A phone in a USSD session: `dial()`, then `answer("1")` for each screen."""

    def __init__(
        self,
        client: FlaskClient,
        phone: str,
        *,
        session_id: str | None = None,
        path: str = "/ussd/africastalking",
    ) -> None:
        self.client = client
        self.phone = phone
        self.session_id = session_id or f"ATUid_test_{next(_sessions):06d}"
        self.path = path
        self.text = ""
        self.answers: list[str] = []
        self.log: list[tuple[str, str]] = []

    def dial(self) -> str:
        """Start the session (an empty `text`)."""
        self.answers = []
        self.text = ""
        return self._hop("dial " + SERVICE_CODE)

    def answer(self, *inputs: str) -> str:
        """Type each input in turn; return the last screen."""
        screen = ""
        for value in inputs:
            self.answers.append(value)
            self.text = "*".join(self.answers)
            screen = self._hop(value)
        return screen

    def hop(self, text: str) -> str:
        """Send one hop with exactly this `text` (for retries and odd networks)."""
        self.text = text
        return self._hop(text)

    def _hop(self, label: str) -> str:
        response = self.client.post(
            self.path,
            data={
                "sessionId": self.session_id,
                "serviceCode": SERVICE_CODE,
                "phoneNumber": self.phone,
                "networkCode": "63902",
                "text": self.text,
            },
        )
        body = response.get_data(as_text=True)
        assert response.status_code == 200, body
        assert response.mimetype == "text/plain", response.mimetype
        assert body.startswith(("CON ", "END ")) and len(body) <= MAX_REPLY, body
        self.log.append((label, body))
        return body

    @property
    def ended(self) -> bool:
        return bool(self.log) and self.log[-1][1].startswith("END ")

    def transcript(self) -> str:
        """Inputs in, screens out, as the golden files hold them."""
        return "".join(f">>> {label}\n{screen}\n" for label, screen in self.log)
