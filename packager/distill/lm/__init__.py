"""A language model's distillation: the student cut from the teacher (student), its losses,
the trainer, one run (distill), the teacher passes (generate, topk) and an API teacher's halves
(api)."""
