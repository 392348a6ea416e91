"""Session fixtures of the export stage (see conftest.py)."""
