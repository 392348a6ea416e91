"""Session fixtures of the model stage (see conftest.py)."""
