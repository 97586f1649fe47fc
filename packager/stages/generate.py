"""generate: sequence-level KD data, written once by the teacher (packager.distill.lm.generate)
and cached like any step, on the build's device and precision: its key holds the generation
settings, the device's kind and the precision, and the ids of the teacher and the data, so it
reruns when the teacher or the prompts change and not otherwise."""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import GenerateStepConfig
from packager.stage import StageContext, register_stage


@register_stage(GenerateStepConfig, name="generate", version=2)
def generate(teacher: Artifact, cfg: GenerateStepConfig, ctx: StageContext) -> Output:
    from packager.distill.lm.generate import generate_completions
    from packager.nets.device import Compute

    data = ctx.inputs["data"]
    out = ctx.workdir / "generated.jsonl"
    source = teacher.meta.get("source", "teacher")
    with ctx.reporter.track("generate", cfg.prompts or data.meta["sizes"]["train"]) as advance:
        compute = Compute(**cfg.compute.job())
        counts = generate_completions(teacher.file(), data.path, out, cfg, source, advance, compute)
    ctx.log(
        f"{counts['completions']} completions of {counts['prompts']} prompts by {source} "
        f"({counts['tokens']} tokens; temperature {cfg.temperature:g}, top-p {cfg.top_p:g}, "
        f"seed {cfg.seed})"
    )
    meta = {"file": "generated.jsonl", "modality": "lm", "generated_by": source}
    meta |= {"teacher_id": teacher.id, "settings": cfg.to_json(), **counts}
    meta["compute"] = compute.describe()
    return Output("data", meta)
