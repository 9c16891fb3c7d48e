"""Outbound messaging: the outbox, SMS providers, the dispatcher and scheduled reminders.

- `outbox`: `queue_message` writes a row in the caller's transaction; nothing else to do.
- `setup`: after that transaction commits, the rows are dispatched (rq job, or inline).
- `dispatcher`: claim, send, record; unknown outcomes are reconciled, never resent blindly
  (its docstring explains the exactly-once design and its residual risk).
- `providers`: one plug-in module per SMS provider (console, Africa's Talking, Twilio,
  Infobip) behind one interface, and the registry that names them.
- `jobs`: rq job functions, the sweep, and the periodic schedule.
- `reminders`, `templates`, `quiet`, `sms`: reminder texts, quiet hours, SMS length.
- `reports`: delivery reports recorded (paygo.web.sms serves them), and the daily chase of
  those that never came.
"""
