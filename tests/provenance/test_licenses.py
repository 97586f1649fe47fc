"""The license table (packager/provenance/licenses.yaml) and the gate on what may be distilled."""

from __future__ import annotations

import pytest

from packager.provenance import licenses as L

CATEGORIES = {
    "permissive",
    "attribution",
    "output-restricted",
    "use-restrictions",
    "non-commercial",
    "builtin",
    "unknown",
}


def test_every_entry_says_what_it_obliges_where_to_read_it_and_whether_it_gates():
    table = L.table()
    assert {"apache-2.0", "mit", "bsd-3-clause", "llama3.1", "llama3", "llama2", "gemma"} <= set(
        table
    )
    assert {"openrail-m", "cc-by-nc-4.0", "unknown"} <= set(table)
    aliases = [a for t in table.values() for a in t.aliases]
    assert len(aliases) == len(set(aliases)), "an alias names two entries"
    for t in table.values():
        assert t.category in CATEGORIES and t.obliges and t.clause and t.link, t.id
        assert t.gate == (t.category not in ("permissive", "builtin")), t.id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("llama3", "llama3"),
        ("Llama3.2", "llama3.1"),
        ("Apache-2.0", "apache-2.0"),
        ("License :: OSI Approved :: MIT License", "mit"),
        ("creativeml-openrail-m", "openrail-m"),
        ("cc-by-nc-sa-4.0", "cc-by-nc-4.0"),
        ("gemma", "gemma"),
    ],
)
def test_card_ids_spdx_ids_and_classifiers_find_their_entry(value, expected):
    assert L.lookup(value).id == expected


def test_a_value_the_table_does_not_know_finds_nothing():
    assert L.lookup("wtfpl-ish") is None and L.lookup(None) is None


def test_license_file_texts_are_recognised_by_their_signatures():
    llama3 = "META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 Version Release Date: ..."
    assert L.match_text(llama3).id == "llama3"
    apache = "                                 Apache License\n                           Version 2.0, January 2004"
    assert L.match_text(apache).id == "apache-2.0"
    assert L.match_text("All rights reserved.") is None


def test_llama3_warns_naming_the_output_use_clause():
    gate = L.assess(L.get("llama3"), "warn", (), "hf:t", "now")
    assert gate.outcome == "warned" and gate.blocked is None
    (warning,) = gate.warnings
    assert "any output or results of the Llama Materials to improve any other" in warning
    assert "1.b.v" in warning and "--accept-terms llama3" in warning


def test_strict_blocks_llama3_with_one_line_until_its_terms_are_accepted():
    blocked = L.assess(L.get("llama3"), "strict", (), "hf:t", "now")
    assert blocked.outcome == "blocked" and "\n" not in blocked.blocked
    assert "--accept-terms llama3" in blocked.blocked
    ok = L.assess(L.get("llama3"), "strict", ("llama3",), "hf:t", "2026-12-01T00:00:00Z")
    assert ok.outcome == "accepted" and ok.warnings == []
    assert ok.accepted == [
        {
            "terms": "llama3",
            "name": "Meta Llama 3 Community License",
            "flag": "--accept-terms llama3",
            "at": "2026-12-01T00:00:00Z",
        }
    ]


def test_permissive_terms_are_quiet_and_unknown_terms_warn_unknown():
    quiet = L.assess(L.get("apache-2.0"), "strict", (), "hf:t", "now")
    assert quiet.outcome == "quiet" and quiet.warnings == [] and quiet.blocked is None
    unknown = L.assess(L.get("unknown"), "warn", (), "hf:t", "now")
    assert unknown.outcome == "warned" and "license unknown" in unknown.warnings[0]


def test_accepting_other_terms_does_not_open_the_gate_and_says_so():
    gate = L.assess(L.get("llama3"), "strict", ("gemma",), "hf:t", "now")
    assert gate.outcome == "blocked"
    assert "--accept-terms gemma does not apply" in gate.warnings[0]


@pytest.mark.parametrize(
    ("name", "terms", "expected"),
    [
        ("minilm", "llama3.1", "Llama-minilm"),
        ("llama-minilm", "llama3.1", "llama-minilm"),
        ("topics", "llama3", "Llama-3-topics"),
        ("Llama3-topics", "llama3", "Llama3-topics"),
        ("topics", "apache-2.0", "topics"),
    ],
)
def test_naming_duties_put_the_prefix_in_front_once(name, terms, expected):
    assert L.package_name(name, L.get(terms)) == expected


@pytest.mark.parametrize(
    ("host", "model", "terms", "by"),
    [
        ("api.openai.com", "anything", "openai", "endpoint host api.openai.com"),
        ("api.anthropic.com", "x", "anthropic", "endpoint host api.anthropic.com"),
        ("generativelanguage.googleapis.com", "x", "gemini-api", "endpoint host"),
        ("api.x.ai", "x", "xai", "endpoint host api.x.ai"),
        ("api.mistral.ai", "x", "mistral-api", "endpoint host api.mistral.ai"),
        ("bedrock-runtime.us-east-1.amazonaws.com", "x", "amazon-bedrock", "endpoint host"),
        ("127.0.0.1:8000", "gpt-4o-mini", "openai", "model id gpt-4o-mini"),
        ("localhost:4000", "claude-3-5-haiku-latest", "anthropic", "model id"),
        ("my-proxy.internal", "grok-3", "xai", "model id grok-3"),
    ],
)
def test_api_terms_are_found_by_host_then_by_model_id(host, model, terms, by):
    found, why = L.for_endpoint(host, model)
    assert found.id == terms and why.startswith(by)
    assert found.gate and found.category == "output-restricted"
    assert "compet" in found.clause or "reconstruct" in found.clause or "reverse" in found.clause


def test_an_open_model_behind_a_local_endpoint_has_no_provider_terms():
    assert L.for_endpoint("127.0.0.1:8765", "SmolLM2-360M-Instruct") is None
    assert L.for_endpoint("127.0.0.1:8765", "mistral-7b-instruct") is None  # open weights


def test_a_strict_gate_names_the_providers_clause_and_the_flag():
    gate = L.assess(L.get("openai"), "strict", (), "api:gpt-4o-mini at api.openai.com", "now")
    assert gate.blocked and "develop models that compete with OpenAI" in gate.blocked
    assert "--accept-terms openai" in gate.blocked
    ok = L.assess(L.get("openai"), "strict", ("openai",), "api:gpt-4o-mini", "now")
    assert ok.outcome == "accepted" and ok.accepted[0]["flag"] == "--accept-terms openai"
