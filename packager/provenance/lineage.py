"""The manifest's `provenance` block: two parents (the teacher whose outputs the student learned
from, and what the student started from), the data, the method, and what was accepted.

Plain values in (the provenance stage's record of the sources and the gate, the distilled
student's and the shipped model's metadata, the method as configured), plain JSON out.
"""

from __future__ import annotations

import math
from typing import Any


def student_init(student: dict[str, Any], teacher_layers: int | None) -> dict[str, Any]:
    """How the student started: derived from the teacher (which layers, copied or pruned), or
    fresh (seeded random init of its own architecture)."""
    init = student.get("init")
    arch = student.get("arch")
    if student.get("teacher_itself"):  # distill: none
        return {"kind": "teacher", "from": "teacher", "how": "the teacher itself, not distilled",
                "init": "teacher", "arch": arch, "params": student.get("params")}  # fmt: skip
    if arch == "pruned":
        return {
            "kind": "derived",
            "from": "teacher",
            "how": "the teacher's channels pruned (torch-pruning, L1 magnitude), weights copied",
            "init": "pruned-channels",
            "arch": arch,
            "params": student.get("params"),
        }
    if init in ("copied", "pruned-ffn"):
        kept = student.get("layers_kept") or []
        of = f" of {teacher_layers}" if teacher_layers else ""
        pruned = ", feed-forward pruned to its strongest neurons" if init == "pruned-ffn" else ""
        return {
            "kind": "derived",
            "from": "teacher",
            "how": f"teacher layers {kept}{of} copied{pruned}",
            "layers_kept": kept,
            "init": init,
            "arch": arch,
            "params": student.get("params"),
        }
    if init == "given":  # a smaller model of the user's, sharing the teacher's tokenizer
        return {
            "kind": "given",
            "from": student.get("source"),
            "how": f"the {arch} folder {student.get('source')}, trained further",
            "init": init,
            "arch": arch,
            "params": student.get("params"),
        }
    return {
        "kind": "fresh",
        "from": None,
        "how": f"fresh {arch} (seeded random init), {student.get('params') or 0:,} params",
        "init": init or "random",
        "arch": arch,
        "params": student.get("params"),
    }


def method(configured: dict[str, Any], student: dict[str, Any], train_rows: int) -> dict[str, Any]:
    """The method as configured plus what ran: epochs, optimizer steps. Every training input
    comes from the data split (no student-generated text), so the on-policy fraction is 0."""
    if configured.get("type") == "none":
        return {"type": "none", "why": "distill: none: the teacher ships, quantized"}
    epochs_run = student.get("epochs_run")
    batch = configured.get("batch_size") or 1
    steps = epochs_run * math.ceil(train_rows / batch) if epochs_run and train_rows else None
    steps = student.get("steps") or steps  # what ran, when the trainer counted it
    return {
        "type": "distillation",
        **configured,
        "epochs_run": epochs_run,
        "best_epoch": student.get("best_epoch"),
        "steps": steps,
        # The fraction of batches the student sampled itself (0: every input from the data).
        "on_policy_fraction": float(student.get("on_policy_fraction") or 0.0),
        # Where it trained: device, its name, precision, processes, seconds, throughput.
        "compute": student.get("compute"),
    }


def provenance_block(
    sources: dict[str, Any],
    teacher_id: str,
    teacher_weights: list[dict[str, Any]] | None,
    student: dict[str, Any],
    teacher_layers: int | None,
    data_rows: dict[str, int],
    configured_method: dict[str, Any],
    quantization: dict[str, Any],
) -> dict[str, Any]:
    """`provenance` of the manifest. `sources`: the provenance stage's output (teacher and data
    as given, the gate); `teacher_weights`: the weights of a teacher trained in this build."""
    teacher = {**sources["teacher"], "id": teacher_id}
    if teacher_weights:
        teacher["weights"] = teacher_weights
    data = [{**d, "rows": data_rows} for d in sources["data"]]
    gate = sources["gate"]
    terms = sources["teacher"]["terms"]
    return {
        "teacher": teacher,
        "student_init": student_init(student, teacher_layers),
        "data": data,
        "method": method(configured_method, student, data_rows.get("train", 0)),
        "quantized": {
            k: quantization.get(k) for k in ("mode", "precision", "format") if k in quantization
        },
        "policy": gate["policy"],
        "gate": gate["outcome"],
        "accepted": gate["accepted"],
        "duties": sources["duties"],
        "attribution": [terms["attribution"]] if terms.get("attribution") else [],
        "warnings": gate["warnings"],
    }


def api_teacher(provenance: dict[str, Any], teacher: dict[str, Any], answers_id: str) -> None:
    """Record, in the manifest's provenance, that the student learned from another model's
    outputs through an endpoint: the served model ids, the calls (made, cached, tokens, cost,
    failures) and their dates on the teacher; its answers as generated data."""
    calls = teacher["teacher_calls"]
    t = provenance["teacher"]
    t["endpoint"] = {**t.get("endpoint", {}), **teacher["endpoint"]}
    keep = ("requests", "cached", "calls", "attempts", "tokens_in", "tokens_out", "failures")
    t["calls"] = {k: calls[k] for k in keep} | {
        "first_call": calls["first_call"],
        "last_call": calls["last_call"],
        "cost_usd": calls["cost_usd"],
    }
    t["learned_from"] = "outputs"  # another model's answers, not its weights
    what = teacher.get("answers", "answers")
    sizes = teacher.get("sizes") or {"train": teacher.get("completions")}
    provenance["data"].append(
        {
            "source": f"the teacher's {what} (teacher step)",
            "kind": "generated",
            "sha256": answers_id,
            "rows": sizes,
            "license": None,
            "generated_by": f"{teacher['source']} at {teacher['endpoint']['host']}",
        }
    )
