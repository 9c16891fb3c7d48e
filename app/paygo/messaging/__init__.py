"""Outbound messaging: the outbox, SMS providers, the dispatcher and scheduled reminders.

- `outbox`: `queue_message` writes a row in the caller's transaction and returns it.
- `sending`: `send_committed` sends what a transaction wrote, once it has committed (an
  rq job per message, inline without Redis, or at once for a row written claimed); and
  `sweep`, the backstop that sends or reconciles whatever was left behind.
- `dispatcher`: claim, send, record; unknown outcomes are reconciled, never resent blindly
  (its docstring explains the exactly-once design and its residual risk).
- `providers`: one plug-in module per SMS provider (console, Africa's Talking, Twilio,
  Infobip) behind one interface, and the registry that names them.
- `reminders`, `quiet`: reminders (their texts are in `paygo.texts`), quiet hours.
- `reports`: delivery reports recorded (paygo.web.sms serves them), and the daily chase of
  those that never came.

When the sweep, the reminders and the chase run is paygo.schedule's business.
"""
