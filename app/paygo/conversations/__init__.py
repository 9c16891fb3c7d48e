"""Conversations: the flow engine and the USSD and SMS channels built on it."""
