"""The base of every stage config: frozen (hashable cache keys) and strict about unknown fields."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

Task = Literal[
    "image-classification",
    "classification",
    "text-classification",
    "feature-extraction",
    "text-generation",
]
TEXT_TASKS = ("text-classification", "feature-extraction")
LM_TASK = "text-generation"  # causal language models: their own handler in every stage


def _thread_count(value: int) -> int:
    from packager.limits import threads_error

    why = threads_error(value)
    if why is not None:  # 100000 threads exhaust memory or crash onnxruntime's thread pool
        raise ValueError(why)
    return value


# A thread count of any field: 1 to 4 per core of this machine (packager.limits).
Threads = Annotated[int, AfterValidator(_thread_count)]


def _dim_sizes(value: dict[str, int]) -> dict[str, int]:
    from packager.limits import MAX_DIM

    if any(not 1 <= d <= MAX_DIM for d in value.values()):
        raise ValueError(f"dim values must be 1 to {MAX_DIM}")
    return value


# Values of symbolic input dims (--dim sequence=N): each 1 to packager.limits.MAX_DIM.
Dims = Annotated[dict[str, int], AfterValidator(_dim_sizes)]


class Config(BaseModel):
    """Base of every stage config: frozen (hashable cache keys) and strict about unknown fields."""

    # NaN and inf are never a meaningful tolerance, budget or rate: refused like a typo.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Fields that only say where results go, not what they are: left out of cache keys, so
    # e.g. publishing to another out_dir does not rebuild the package.
    unkeyed: ClassVar[frozenset[str]] = frozenset()
    # Fields naming files or folders the stage reads: relative paths in a recipe file are
    # joined to the recipe's folder (packager.recipe), never taken from the working directory.
    path_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def relative_to(cls, data: dict[str, Any], base: Path) -> dict[str, Any]:
        """`data` (this section as read from a recipe) with its relative paths joined to `base`."""
        out = dict(data)
        for name in cls.path_fields:
            value = out.get(name)
            if isinstance(value, str) and value.strip():
                out[name] = join_relative(value, base)
        return out

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def key_json(self) -> dict[str, Any]:
        """`to_json` without the unkeyed fields, at every depth: what cache keys hash."""
        return self.model_dump(mode="json", exclude=self._unkeyed_paths())

    def _unkeyed_paths(self) -> dict[str, Any]:
        paths: dict[str, Any] = dict.fromkeys(self.unkeyed, True)
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Config) and (sub := value._unkeyed_paths()):
                paths[name] = sub
        return paths

    def digest(self) -> str:
        from packager.hashing import json_sha256

        return json_sha256(self.key_json())

    def input_paths(self) -> dict[str, str]:
        """The files and folders this config names and its stage reads (name -> path): the
        runner stamps their content into the step's key (packager.hashing)."""
        return {}


def join_relative(value: str, base: Path) -> str:
    """An absolute path (or ~) as given; a relative one joined to `base`."""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def section_class(annotation: Any, default: Any) -> Any:
    """The config class a field holds (`ApiConfig | None` holds ApiConfig), else `default`."""
    import typing

    if isinstance(annotation, type):
        return annotation
    members = [
        a for a in typing.get_args(annotation) if isinstance(a, type) and a is not type(None)
    ]
    return members[0] if len(members) == 1 else default
