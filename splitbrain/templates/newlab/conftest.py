"""Fixtures of lab {number}'s hidden tests."""
