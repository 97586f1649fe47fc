"""torch -> ONNX: plain nn.Modules (torch_export) and transformers models (hf_export), each with
its parity check against torch. The export stage (packager/stages/export.py) picks one by the
input's modality."""
