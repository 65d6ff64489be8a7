"""Fault-injection scenarios: each runs against its own redis-server and returns a row of the fault table."""
