"""Unit tests of the pure domain: given events, when a command or a read, then exact facts and figures."""
