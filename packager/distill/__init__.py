"""Students derived from teachers, distillation losses and the training loop."""
