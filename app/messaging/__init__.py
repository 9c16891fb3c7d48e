"""Outbound messaging: the outbox, SMS providers, the dispatcher and scheduled reminders."""
