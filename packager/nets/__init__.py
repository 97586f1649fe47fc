"""Neural-network helpers shared by teachers (packager.sources), students (packager.distill) and
export: array architectures and their safetensors I/O (arch), the seeded training loop (train),
and running transformers models on tokenised text (hf). Import the submodule you need."""
