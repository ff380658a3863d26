"""Outbound calls: callbacks and the automated survey call (docs/outbound.md)."""
