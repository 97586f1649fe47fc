"""Hugging Face-style model cards: YAML front matter read from a teacher's README.md, and the
package's own README.md written with front matter (license, base_model, tags, datasets,
pipeline_tag, model-index with the measured metrics) and a "Distillation" section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "classification": "tabular-classification",
    "text-classification": "text-classification",
    "feature-extraction": "feature-extraction",
}


def front_matter(text: str) -> dict[str, Any]:
    """The YAML mapping between the leading `---` lines of a model card ({} when there is none
    or it is not a mapping: a card's prose never fails a build)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i, ln in enumerate(lines[1:], 1) if ln.strip() in ("---", "..."))
        data = yaml.safe_load("\n".join(lines[1:end]))
    except (StopIteration, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def read_front_matter(path: Path) -> dict[str, Any]:
    try:
        return front_matter(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def package_license(prov: dict[str, Any]) -> tuple[str, str | None]:
    """(license id, license_name) the card gives the student: the teacher's, whose terms flow to
    what is distilled from it; for a teacher trained here, the data's; else other/unknown."""
    teacher = prov["teacher"]
    category = teacher["terms"]["category"]
    license_ = None if category in ("builtin", "unknown") else teacher["license"]["id"]
    if category == "builtin":
        license_ = next((d["license"]["id"] for d in prov["data"] if d.get("license")), None)
    return (license_, None) if license_ else ("other", "unknown")


def card_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """The card's front matter, from the manifest's provenance and metrics."""
    prov = manifest["provenance"]
    teacher = prov["teacher"]
    data_ids = [d.get("hub_id") or d["source"] for d in prov["data"]]
    quantized = (manifest.get("quantization") or {}).get("precision")
    tags = ["distillation", "edgepack", "onnx"]
    tags += [quantized] if quantized and quantized != "fp32" else []
    license_, name = package_license(prov)
    meta: dict[str, Any] = {
        "license": license_,
        "license_name": name,
        "base_model": teacher.get("hub_id"),
        "library_name": "onnx",
        "pipeline_tag": PIPELINE_TAGS.get(manifest["task"]),
        "tags": tags,
        "datasets": data_ids,
        "model-index": [_model_index(manifest)],
    }
    return {k: v for k, v in meta.items() if v is not None}


def _model_index(manifest: dict[str, Any]) -> dict[str, Any]:
    metrics = manifest["metrics"]
    shipped = metrics.get(metrics.get("shipped", ""), {})
    return {
        "name": manifest["name"],
        "results": [
            {
                "task": {"type": PIPELINE_TAGS.get(manifest["task"], manifest["task"])},
                "dataset": {
                    "name": metrics.get("dataset", ""),
                    "type": manifest["provenance"]["data"][0]["source"],
                },
                "metrics": [
                    {"type": k, "value": round(float(v), 6), "name": f"{metrics['shipped']} {k}"}
                    for k, v in shipped.items()
                    if isinstance(v, int | float)
                ],
            }
        ],
    }


def _distillation(manifest: dict[str, Any]) -> str:
    prov = manifest["provenance"]
    t, init, method = prov["teacher"], prov["student_init"], prov["method"]
    terms = t["terms"]
    losses = " + ".join(f"{w:g} x {k}" for k, w in method.get("losses", {}).items())
    temp = f", temperature {method['temperature']:g}" if method.get("temperature") else ""
    lines = [
        "## Distillation",
        "",
        f"- Teacher: `{t['source']}`" + (f" ({t['hub_id']})" if t.get("hub_id") else ""),
        *_endpoint_lines(t),
        f"- Teacher license: `{t['license']['id']}` ({terms['name']}; from: "
        f"{t['license'].get('from') or 'nothing found'}): {t['license'].get('link') or terms['link']}",
        f"- What the terms oblige: {'; '.join(terms['obliges']) or '-'}",
        f"- Why it matters for distillation: {terms['clause']}",
        f"- Student init: {init['how']}",
        f"- Method: {losses}{temp}; {method.get('epochs_run', '-')} epoch(s), "
        f"{method.get('steps', '-')} optimizer steps; on-policy fraction "
        f"{method.get('on_policy_fraction', 0):g}"
        if method.get("type") != "none"
        else "- Method: none (distill: none): the teacher itself ships, quantized",
    ]
    for d in prov["data"]:
        lic = (d.get("license") or {}).get("id") or "not given"
        lines.append(
            f"- Data: `{d['source']}` (sha256 {str(d.get('sha256'))[:16]}…, license {lic})"
        )
    for a in prov.get("accepted", []):
        lines.append(
            f"- Terms accepted: `{a['terms']}` ({a['name']}) with `{a['flag']}` at {a['at']}"
        )
    for d in prov.get("duties", []):
        lines.append(f"- Duty ({d['status']}): {d['duty']}")
    for n in t.get("notes", []):
        lines.append(f"- Note: {n}")
    lines += ["", "Not legal advice: read the teacher's terms yourself."]
    return "\n".join(lines)


def _endpoint_lines(t: dict[str, Any]) -> list[str]:
    """A teacher only called: the student learned from another model's outputs, and through
    which endpoint (its URL; a key is never part of it)."""
    e = t.get("endpoint")
    if not e:
        return []
    c = t.get("calls") or {}
    served = ", ".join(f"`{m}`" for m in e.get("served_models") or []) or "not recorded"
    cost = f", cost ${c['cost_usd']:.4f}" if c.get("cost_usd") is not None else ""
    return [
        f"- Learned from another model's outputs: the {e.get('endpoint') or 'API'} answers of "
        f"model `{e['model']}` through the endpoint {e['base_url']} (host `{e['host']}`); the "
        f"server answered as {served}",
        f"- Calls: {c.get('calls', 0)} made for this student, {c.get('cached', 0)} answered "
        f"from the call cache, {c.get('tokens_in', 0):,} tokens in and {c.get('tokens_out', 0):,} "
        f"out{cost}; first {c.get('first_call') or '-'}, last {c.get('last_call') or '-'}",
    ]


def _teacher_size(manifest: dict[str, Any], distill: dict[str, Any]) -> str:
    if manifest["provenance"]["teacher"].get("kind") == "api":
        return "only called: its answers, not its weights"
    return f"{distill.get('teacher_params') or 0:,} params"


def _use(manifest: dict[str, Any]) -> tuple[str, str]:
    pre = manifest["preprocessing"]
    if pre.get("type") == "text":
        field = "embeddings" if manifest["postprocessing"]["type"] == "embedding" else "labels"
        use = f'print(pkg.predict(["some text", "another one"]).{field})  # raw strings'
        how = (
            f"Preprocessing (applied by the runtime, needs `tokenizers`): {pre['tokenizer']}, "
            f"truncation at {pre['max_length']} tokens, padding to the longest text of a batch."
        )
        return use, how
    use = f"print(pkg.predict(raw).labels)  # raw: {pre.get('sample_shape')} values per example"
    how = (
        f"Preprocessing (applied by the runtime): x = (raw * {pre.get('scale')} + "
        f"{pre.get('offset')} - {pre.get('mean')}) / {pre.get('std')},\nreshaped to "
        f"(-1, {', '.join(str(d) for d in pre.get('sample_shape', []))})."
    )
    return use, how


def model_card(manifest: dict[str, Any], report: dict[str, Any]) -> str:
    """README.md of a package: front matter, use, distillation, how it was made, results."""
    from packager.report import markdown_report

    lineage, distill = manifest["lineage"], report.get("distill", {})
    head = yaml.safe_dump(card_metadata(manifest), sort_keys=False, allow_unicode=True)
    attribution = [
        f"**{a}**\n" for a in manifest["provenance"].get("attribution", []) if a
    ]  # e.g. "Built with Llama": shown at the top, as the terms ask
    use, how = _use(manifest)
    return f"""---
{head}---

# {manifest["name"]} {manifest["version"]}

{"".join(attribution)}
An edgepack package: task `{manifest["task"]}`, model `{manifest["model"]}`
({report["shipped"]}), built by edgepack {lineage["libraries"].get("edgepack")}.

## Use it

```python
import edgepack_runtime

pkg = edgepack_runtime.load("{manifest["name"]}.edgepack")  # verifies every file's sha256
{use}
```

{how}

{_distillation(manifest)}

## How it was made

Teacher `{manifest["provenance"]["teacher"]["source"]}` ({_teacher_size(manifest, distill)}) distilled into a
`{distill.get("arch", "-")}` student ({distill.get("params") or 0:,} params, best epoch {distill.get("best_epoch", "-")}
of {distill.get("epochs_run", "-")}), exported to ONNX and quantized ({report.get("quantization") or "none"}).

## Results

{markdown_report(report).split(chr(10), 2)[2]}"""
