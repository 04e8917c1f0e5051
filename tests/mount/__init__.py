"""The mount tier (see conftest.py)."""
