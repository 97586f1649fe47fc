"""packager.sources.teacher: one Teacher class per source, picked once from the scheme, saying
what it can give; a throwaway source registered here is found like the built-in ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from packager.config import TeacherConfig
from packager.config import source_paths as paths
from packager.errors import RecipeError
from packager.sources import teacher as T

PACKAGER = Path(__file__).resolve().parents[2] / "packager"


def _cfg(source: str, **kw) -> TeacherConfig:
    if source.startswith("api:"):
        kw.setdefault("api", {"base_url": "https://api.openai.com/v1"})
    return TeacherConfig(source=source, **kw)


@pytest.mark.parametrize(
    ("source", "cls", "local", "gives"),
    [
        ("builtin:digits-cnn", "BuiltinTeacher", True, {T.LOGITS, T.WEIGHTS}),
        ("builtin:tiny-llama", "BuiltinTeacher", True, {T.COMPLETIONS, T.TOPK, T.TOKENIZER}),
        ("python:mymodels:make_net", "PythonTeacher", True, {T.LOGITS, T.WEIGHTS}),
        ("hf:some/folder", "HfTeacher", True, {T.VECTORS, T.TOKENIZER, T.WEIGHTS}),
        ("api:gpt-4o-mini", "ApiTeacher", False, {T.COMPLETIONS, T.LABELS, T.VECTORS}),
    ],
)
def test_each_source_is_one_class_saying_what_it_gives(source, cls, local, gives):
    t = T.teacher_of(_cfg(source))
    assert type(t).__name__ == cls and t.local is local and t.can(*gives)
    assert t.spec == source.split(":", 1)[1]
    assert not T.teacher_of(_cfg(source)).can("something else")


def test_an_api_teacher_gives_what_its_endpoint_answers():
    api = {"base_url": "http://127.0.0.1:1/v1", "endpoint": "embeddings"}
    assert T.teacher_of(_cfg("api:m", api=api)).offers() == {T.VECTORS}
    api = {"base_url": "http://127.0.0.1:1/v1", "endpoint": "completions", "top_logprobs": 5}
    assert T.teacher_of(_cfg("api:m", api=api)).offers() == {T.COMPLETIONS, T.TOPK}
    with pytest.raises(RecipeError, match="a api: teacher cannot give a transformers folder"):
        T.teacher_of(_cfg("api:m")).folder()


def test_describe_needs_no_network_and_finds_terms_by_host_model_or_recipe():
    record, terms = T.teacher_of(_cfg("api:text-embedding-3-small")).describe()
    assert terms.id == "openai" and record["license"]["from"] == "endpoint host api.openai.com"
    assert record["endpoint"]["host"] == "api.openai.com" and record["kind"] == "api"
    local = {"base_url": "http://127.0.0.1:8765/v1"}
    _, terms = T.teacher_of(_cfg("api:claude-sonnet-4", api=local)).describe()
    assert terms.id == "anthropic"  # a proxy on this machine in front of Anthropic's model
    _, terms = T.teacher_of(_cfg("api:my-model", api=local)).describe(declared="apache-2.0")
    assert terms.id == "apache-2.0"
    _, terms = T.teacher_of(_cfg("api:my-model", api=local)).describe()
    assert terms.id == "unknown" and terms.gate
    record, terms = T.teacher_of(_cfg("builtin:digits-cnn")).describe()
    assert terms.id == "edgepack-builtin" and record["kind"] == "builtin"


def test_a_new_source_is_one_class_registered_where_it_lives(monkeypatch):
    monkeypatch.setitem(paths.TEACHER_SCHEMES, "echo", "echo:NAME")

    @T.register_source
    class EchoTeacher(T.Teacher):
        scheme = "echo"
        gives = frozenset({T.LABELS})

    try:
        t = T.teacher_of(TeacherConfig(source="echo:parrot"))
        assert isinstance(t, EchoTeacher) and t.spec == "parrot" and t.can(T.LABELS)
        with pytest.raises(RecipeError, match="cannot give a causal language model"):
            t.causal_lm(Path("."), 8, Path("."), None)
    finally:
        T.SOURCES.pop("echo")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="expected builtin:NAME or python:MODULE:FACTORY"):
        TeacherConfig(source="echo:parrot")


def test_the_scheme_is_parsed_in_one_place():
    """Stages, plans, the recipe, sources and provenance never read a teacher source's prefix:
    they ask packager.sources.teacher (or TeacherConfig.scheme)."""
    prefix = re.compile(r'(startswith|removeprefix)\("(hf|builtin|python|api):')
    # Not teacher sources: `edgepack export`'s SOURCE, and the data's builtin:digits.
    allowed = {"stages/export_model.py", "stages/provenance.py"}
    found = []
    for folder in ("stages", "sources", "provenance", "distill", "nets", "export"):
        for f in (PACKAGER / folder).rglob("*.py"):
            rel = f.relative_to(PACKAGER).as_posix()
            if rel not in allowed and prefix.search(f.read_text()):
                found.append(rel)
    for f in ("recipe.py", "plans.py"):
        if prefix.search((PACKAGER / f).read_text()):
            found.append(f)
    assert found == []


_STUDENT = {"arch": "transformer", "source": "hf:x"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"distill": {"student": {"arch": "transformer"}}},
            "distill.student.source: an api: teacher has no weights",
        ),
        (
            {"teacher": {"api": {"base_url": "http://h/v1", "endpoint": "chat"}}},
            "task feature-extraction learns from the embeddings endpoint",
        ),
        (
            {"distill": {"student": _STUDENT, "losses": {"embedding_cosine": 1, "hidden_mse": 1}}},
            "distill.losses ['hidden_mse']: an api: teacher's embeddings answers teach",
        ),
        (
            {"teacher": {"api": {"base_url": "https://me:sk-123@h/v1"}}},
            "the URL carries credentials",
        ),
        ({"teacher": {"api": {"base_url": "https://h/v1?key=sk-123"}}}, "takes no query string"),
        (
            {"teacher": {"api": {"base_url": "https://h/v1", "api_key_env": "sk-123"}}},
            "not the key",
        ),
        ({"teacher": {"source": "api:m"}}, "needs a teacher.api section"),
    ],
)
def test_an_api_recipe_is_refused_in_one_line_that_never_repeats_a_key(change, says):
    from packager.recipe import build_recipe

    recipe = {
        "name": "t",
        "task": "feature-extraction",
        "teacher": {"source": "api:m", "api": {"base_url": "http://127.0.0.1:1/v1"}},
        "data": {"source": "x.jsonl"},
        "distill": {"student": _STUDENT},
    }
    for section, value in change.items():
        recipe[section] = value if section != "teacher" else {**recipe["teacher"], **value}
        if section == "teacher" and "source" in value:
            recipe["teacher"] = value
    with pytest.raises(RecipeError) as err:
        build_recipe(recipe)
    assert says in str(err.value) and "sk-123" not in str(err.value)
    assert "\n" not in str(err.value)
