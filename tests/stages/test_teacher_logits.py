"""teacher_logits stage: the teacher's top-k logits per token over the training sequences,
cached once per teacher and corpus; distillation then trains from them (forward KL + CE)."""

from __future__ import annotations

import numpy as np
import torch

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _recipe(data, teacher, **sections):
    from tiny_models import tiny_lm_recipe_dict

    from packager.recipe import build_recipe

    return build_recipe(tiny_lm_recipe_dict(str(data), str(teacher), **sections))


def test_top_k_cache_holds_the_teachers_largest_logits_and_distill_reads_it(
    tmp_path, tiny_lm_teacher, tiny_lm_texts_file
):
    from packager.data.lm import pack, row_text, rows
    from packager.sources.lm import describe_lm, encoder, lm_tokenizer, load_causal_lm

    recipe = _recipe(tiny_lm_texts_file, tiny_lm_teacher, distill={"teacher_topk": 4})
    names = ("provenance", "data", "teacher", "tokenize", "teacher_logits", "distill")
    steps = [s for s in build_plan(recipe) if s.name in names]
    assert [s.name for s in steps] == list(names)
    res = run(steps, cache_dir=tmp_path / "cache", reporter=SilentReporter())
    art = res.artifact("teacher_logits")
    values = np.load(art.path / "values.npy")
    indices = np.load(art.path / "indices.npy")
    assert art.meta["bytes_per_token"] == 4 * (2 + 2) and indices.dtype == np.uint16
    teacher = res.artifact("teacher").file()
    tok = lm_tokenizer(teacher)
    data = res.artifact("data").path
    model = load_causal_lm(teacher)
    eos = describe_lm(model)["eos_token_ids"][0]
    first = next(pack((row_text(r) for r in rows(data, "train")), encoder(tok), eos, 32))
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(first[None])).logits[0]
    top = ref.topk(4, -1)
    assert np.array_equal(indices[0], top.indices.numpy())
    assert np.allclose(values[0], top.values.numpy(), atol=1e-2)
    assert res.artifact("distill").meta["steps"] == 6
