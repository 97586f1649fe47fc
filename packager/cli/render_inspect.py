"""Terminal rendering of `edgepack inspect`: a package's or a model's summary, its cost table
and its provenance tree. Formatting only; every text is `inert` first (it comes from the package
or the model)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from packager.cli.render import inert


def print_cost(console: Console, cost: dict[str, Any], top: int = 15) -> None:
    """The per-op cost table (the `estimated` kind's inputs), heaviest ops first. `cost` must be
    `inert` (op and input names are the model's)."""
    shapes = ", ".join(f"{k} {v}" for k, v in cost["inputs"].items())
    t = Table(title=f"cost model at input shapes {shapes}", title_justify="left")
    for col in ("op", "type", "output", "MACs", "FLOPs", "param KiB", "moved KiB"):
        t.add_column(col, justify="left" if col in ("op", "type", "output") else "right")
    ops = sorted(cost["ops"], key=lambda o: -o["flops"])
    for o in ops[:top]:
        t.add_row(
            o["name"],
            o["op_type"],
            str(o["output_shape"]) if o["known"] else "?",
            f"{o['macs']:,}",
            f"{o['flops']:,}",
            f"{o['param_bytes'] / 1024:.1f}",
            f"{o['bytes_moved'] / 1024:.1f}",
        )
    if len(ops) > top:
        t.add_row(f"... {len(ops) - top} more (--json lists all)", "", "", "", "", "", "")
    console.print(t)
    console.print(
        f"  total MACs {cost['macs']:,}   FLOPs {cost['flops']:,}   "
        f"params {cost['param_bytes'] / 1024:.1f} KiB   "
        f"peak activations {cost['activation_peak_bytes'] / 1024:.1f} KiB"
        + (f"   ({cost['unknown_ops']} op(s) with unknown shapes)" if cost["unknown_ops"] else "")
    )
    if cost.get("guessed_dims"):
        guessed = ", ".join(f"{k}={v}" for k, v in cost["guessed_dims"].items())
        console.print(
            f"  [yellow]guessed symbolic dims:[/] {guessed} (give real values: --dim NAME=VALUE)"
        )


def print_inspect(console: Console, info: dict[str, Any]) -> None:
    info = inert(info)  # every name and text comes from the package or the model
    head = f"{info['path']}: {info['kind']}"
    if info["kind"] == "package":
        head += (
            f" {info['name']} {info['version']} ({info['task']}, schema {info['schema_version']})"
        )
    console.print(head)
    for io in ("inputs", "outputs"):
        for v in info[io]:
            console.print(f"  {io[:-1]:<6} {v['name']}: {v['dtype']} {v['shape']}")
    console.print(
        f"  params {info['params']:,}   size {info['size_bytes'] / 1024:.1f} KiB   "
        f"nodes {info['nodes']}   opset {info['opset'].get('ai.onnx', '?')}"
    )
    console.print("  ops    " + ", ".join(f"{k} {v}" for k, v in info["ops"].items()))
    if info.get("cost"):
        print_cost(console, info["cost"])
    if info["kind"] == "package":
        m = info["metrics"]
        for label in m:  # teacher_fp32, student_fp32, the quantized student by its precision
            if isinstance(m[label], dict):
                # accuracy (classifiers) or cosine / top-k agreement (embeddings)
                shown = ", ".join(f"{k} {v:.4f}" for k, v in m[label].items() if k != "macro_f1")
                console.print(f"  {label:<13} {shown}")
        for b in info["benchmarks"]:
            if b.get("status", "ok") != "ok":
                value = b.get("message", "did not run")
            elif b["kind"] == "estimated":
                value = f"estimate >= {b['estimate']['latency_ms']:.3f} ms (roofline)"
            else:
                value = f"p50 {b['latency_ms']['p50']:.3f} ms"
            console.print(
                f"  bench {b.get('variant') or b.get('model_name')!s:<13} {b['kind']} on "
                f"{b.get('target', 'host')} ({b['machine']['cpu']}): {value}, "
                f"{b['threads']} thread(s), batch {b.get('batch', 1)}"
            )
        console.print(f"  files  {len(info['files'])} (sha256 in the manifest)")


def _teacher_line(t: dict[str, Any]) -> str:
    rev = t.get("revision") or {}
    pinned = rev.get("commit") or rev.get("version")
    weights = t.get("weights") or []
    first = f", weights {weights[0]['file']} sha256 {weights[0]['sha256'][:12]}" if weights else ""
    more = f" (+{len(weights) - 1} more)" if len(weights) > 1 else ""
    return (
        f"teacher [bold]{t['source']}[/]" + (f" ({t['hub_id']})" if t.get("hub_id") else "")
        + (f", revision {pinned}" if pinned else "") + first + more
    )  # fmt: skip


def print_provenance(console: Console, info: dict[str, Any]) -> None:
    """`inspect --provenance`: the lineage tree, licenses and duties, data, what was accepted."""
    from rich.tree import Tree

    info = inert(info)  # every text comes from the package
    prov = info.get("provenance")
    console.print(f"{info['path']}: {info['name']} provenance")
    if not prov:
        console.print("  no provenance block (a package written before schema 1.1)")
        return
    t, init, q = prov["teacher"], prov["student_init"], prov.get("quantized") or {}
    lic, terms = t["license"], t["terms"]
    tree = Tree(_teacher_line(t))
    e = t.get("endpoint")
    if e:  # a teacher only called: the endpoint, the model, the calls
        c = t.get("calls") or {}
        served = ", ".join(e.get("served_models") or []) or "-"
        tree.add(
            f"endpoint {e['base_url']} (host {e['host']}), model {e['model']} (served as {served})"
        )
        tree.add(
            f"calls {c.get('calls', 0)} made, {c.get('cached', 0)} cached, "
            f"{c.get('first_call') or '-'} .. {c.get('last_call') or '-'}; the student "
            "learned from its outputs"
        )
    tree.add(f"license {lic['id']} ({terms['name']}, {terms['category']}; from {lic.get('from')})")
    student = tree.add(f"student {init['kind']}: {init['how']}")
    m = prov["method"]
    losses = " + ".join(f"{w:g} {k}" for k, w in m.get("losses", {}).items())
    student.add(
        f"method {losses}, {m.get('steps') or '-'} steps, on-policy {m['on_policy_fraction']:g}"
        if m.get("type") != "none"
        else "method none: the teacher itself ships"
    )
    student.add(
        f"quantized {q.get('mode', 'none')} {q.get('precision', '')} {q.get('format') or ''}"
    )
    console.print(tree)
    for d in prov["data"]:
        rows = ", ".join(f"{k} {v}" for k, v in (d.get("rows") or {}).items())
        lic_d = (d.get("license") or {}).get("id") or "license not given"
        console.print(
            f"  data     {d['source']}  sha256 {str(d.get('sha256'))[:12]}  {rows}  {lic_d}"
        )
    console.print(f"  terms    {terms['clause']} ({terms['link']})")
    for d in prov.get("duties", []):
        console.print(f"  duty     \\[{d['status']}] {d['duty']}")
    for note in t.get("notes", []):
        console.print(f"  note     {note}")
    console.print(f"  policy   {prov['policy']} ({prov['gate']})")
    for a in prov.get("accepted", []):
        console.print(f"  accepted {a['terms']} ({a['name']}) with {a['flag']} at {a['at']}")
    if not prov.get("accepted"):
        console.print("  accepted nothing")
    console.print("  not legal advice: read the teacher's terms yourself")
