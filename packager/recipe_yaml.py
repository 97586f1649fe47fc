"""A recipe's YAML layer: the loader (safe, no aliases), `--set SECTION.FIELD=VALUE` overrides
and a recipe's `profiles.NAME` (named groups of overrides), applied to plain data before the
recipe is validated (packager.recipe)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from packager.errors import RecipeError


class AliasError(yaml.YAMLError):
    def __init__(self, mark):
        super().__init__("YAML aliases (*name) are not allowed in recipes")
        self.problem_mark = mark


class _RecipeLoader(yaml.SafeLoader):
    """safe_load without aliases: a recipe is small, plain data, and a 1 KB alias bomb
    ("billion laughs") would otherwise expand into gigabytes when copied and validated."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise AliasError(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader subclass: no arbitrary objects


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise RecipeError(f"--set {item!r}: expected section.field=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise RecipeError(f"--set {item!r}: empty field name")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except AliasError as err:
        raise RecipeError(f"--set {key.strip()}: {err}") from None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))  # deep copy of plain YAML data
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise RecipeError(f"--set {item!r}: {p} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def profile_overrides(data: dict[str, Any], profile: str | None, source: str) -> list[str]:
    """The `--set` overrides of the recipe's `profiles.NAME` (a mapping of section.field to a
    value: e.g. the settings that fit one GPU), removing the `profiles` section from `data`."""
    profiles = data.pop("profiles", None) or {}
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise RecipeError(f"recipe {source}: profiles: expected NAME: {{section.field: value}}")
    if profile is None:
        return []
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise RecipeError(f"recipe {source}: no profile {profile!r} (its profiles: {known})")
    return [f"{key}={json.dumps(value)}" for key, value in profiles[profile].items()]
