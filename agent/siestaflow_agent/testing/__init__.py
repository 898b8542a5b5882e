"""Test doubles for the agent's tests. Nothing here may be used in production."""
