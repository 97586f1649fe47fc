"""The tool's version: a leaf, so nothing imports `packager/__init__` (and its lazy surface) for it."""

__version__ = "0.1.0"
