"""Loopback stand-ins for the providers' HTTP APIs (the real SDKs talk to them)."""
