"""Depth-tied Conformer speech recognition for embedded targets."""

__version__ = "0.1.0"
