"""edgepack: distill, export, quantize, verify, benchmark and package models for edge devices.

The public surface: load a recipe, run it, inspect what it produced.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "EdgepackError",
    "Recipe",
    "__version__",
    "keygen",
    "load_recipe",
    "run",
    "verify_package",
]


def __getattr__(name: str):
    # Lazy so that `import packager` (and `edgepack --help`) stays instant.
    if name in ("Recipe", "load_recipe"):
        from packager import recipe

        return getattr(recipe, name)
    if name == "run":
        from packager.pipeline import run

        return run
    if name == "verify_package":
        from packager.verify import verify_package

        return verify_package
    if name == "keygen":
        from packager.signing import keygen

        return keygen
    if name == "EdgepackError":
        from packager.errors import EdgepackError

        return EdgepackError
    raise AttributeError(name)
