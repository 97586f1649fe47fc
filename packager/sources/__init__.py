"""Where teachers come from: `builtin:NAME` (trained here, seeded), `python:MODULE:FACTORY` (a
user's nn.Module factory with weights from safetensors or a weights-only .pt), and `hf:PATH`
(packager.sources.hf). Import the submodule you need: this package imports nothing, so that
planning a build (which fingerprints sources) never pays for torch."""
