"""edgepack: distill, export, quantize, verify, benchmark and package models for edge devices.

The public surface: load a recipe, build it (or run any plan), inspect what it produced.

    recipe = packager.load_recipe("models/digits.yaml")
    result = packager.build(recipe)            # pipeline.run(plans.build_plan(recipe), ...)
    result.package_path
"""

from __future__ import annotations

from packager._version import __version__

__all__ = [
    "EdgepackError",
    "Recipe",
    "__version__",
    "build",
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
    if name in ("run", "build"):
        from packager import pipeline

        return getattr(pipeline, name)
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
