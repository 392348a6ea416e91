"""Session fixtures of the data stage (see conftest.py)."""
