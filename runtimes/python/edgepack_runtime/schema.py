"""The manifest schema (format 1.x) as JSON Schema: the one definition of manifest.json.

`MANIFEST_SCHEMA` is what `runtimes/manifest.schema.json` is generated from
(`python scripts/write_manifest_schema.py`; a test fails if they drift) and what the runtime validates with `check()`, so the published contract and the reader
cannot disagree. `check()` interprets the few keywords used here itself: the runtime must stay
numpy + onnxruntime only, so it cannot depend on `jsonschema` (the tests check that both agree).

Only what a reader needs is required; informational blocks (lineage, metrics, benchmarks) are
typed loosely on purpose, so that a newer 1.x writer adding a value never makes an older reader
refuse a package over something it does not even read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidPackageError

SCHEMA_ID = "urn:edgepack:manifest:1"  # a name, not a download location

_STRING = {"type": "string"}
_PATH = {"type": "string", "description": "a file in the package, relative posix path"}
_SHAPE_DIM = {
    "type": ["integer", "string"],
    "description": "a fixed size, or a symbolic name such as 'batch'",
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "edgepack package manifest (manifest.json), schema 1.x",
    "description": "Describes an .edgepack package; see docs/package-format.md.",
    "type": "object",
    "required": [
        "schema_version",
        "name",
        "version",
        "task",
        "model",
        "inputs",
        "outputs",
        "files",
    ],
    "properties": {
        "schema_version": {
            "type": "string",
            "pattern": r"^1\.[0-9]+$",
            "description": "MAJOR.MINOR; readers refuse an unknown MAJOR",
        },
        "name": _STRING,
        "version": _STRING,
        "task": {
            "type": "string",
            "description": "image-classification, text-classification, feature-extraction, ...",
        },
        "description": _STRING,
        "created": {"type": "string", "description": "UTC build time, ISO 8601"},
        "model": {**_PATH, "description": "the deployable model (.onnx, or .ort)"},
        "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/tensor"}},
        "outputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/tensor"}},
        "preprocessing": {
            "type": "object",
            "required": ["type"],
            "description": "raw app input -> model feeds; the fields depend on the type",
            "properties": {
                "type": {"type": "string", "description": "tensor, text, image (1.3) or none"},
                "input": {"type": "string", "description": "the model input it feeds"},
                "dtype": _STRING,
                "sample_shape": {"type": "array", "items": {"type": "integer"}},
                "scale": {"type": "number"},
                "offset": {"type": "number"},
                "mean": {
                    "type": ["number", "array"],
                    "description": "tensor: one number; image: one per channel",
                },
                "std": {
                    "type": ["number", "array"],
                    "description": "tensor: one number; image: one per channel",
                },
                "channel_order": {"type": "string", "description": "image: RGB or BGR"},
                "resize": {
                    "type": ["object", "null"],
                    "description": "image: {shorter, interpolation} or {height, width, "
                    "interpolation}; interpolation bilinear or bicubic (Pillow's 8-bit filters)",
                },
                "crop": {
                    "type": ["object", "null"],
                    "description": "image: centre crop {height, width}",
                },
                "layout": {"type": "string", "description": "image: NCHW or NHWC"},
                "tokenizer": {**_PATH, "description": "tokenizer.json (type text)"},
                "max_length": {"type": "integer", "minimum": 1},
            },
        },
        "postprocessing": {
            "type": "object",
            "required": ["type"],
            "description": "model outputs -> prediction",
            "properties": {
                "type": {"type": "string", "description": "classification, embedding or none"},
                "output": _STRING,
                "activation": {"type": "string", "description": "softmax or none"},
                "labels": {"type": "array", "items": _STRING},
            },
        },
        "labels": {"type": "array", "items": _STRING},
        "files": {
            "type": "object",
            "description": "every file but manifest.json and manifest.sig, by path",
            "additionalProperties": {
                "type": "object",
                "required": ["sha256", "size"],
                "properties": {
                    "sha256": {
                        "type": "string",
                        "pattern": "^[0-9a-f]{64}$",
                        "description": "lowercase hex sha256 of the file",
                    },
                    "size": {"type": "integer", "minimum": 0, "description": "bytes"},
                },
            },
        },
        "samples": {
            "type": "object",
            "required": ["outputs", "atol", "rtol"],
            "description": "example inputs and the outputs the package must reproduce",
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "raw": {**_PATH, "description": ".npy of raw inputs, as passed to predict"},
                "images": {
                    "type": "array",
                    "items": _PATH,
                    "description": "image packages (1.3): the raw image files, one per sample",
                },
                "jpeg_atol": {
                    "type": "number",
                    "minimum": 0,
                    "description": "largest |difference| allowed between a runtime's tensor of "
                    "a JPEG sample and the recorded one (decoders differ; PNG: atol)",
                },
                "inputs": {"type": "object", "additionalProperties": _PATH},
                "outputs": {"type": "object", "additionalProperties": _PATH},
                "atol": {"type": "number", "minimum": 0},
                "rtol": {"type": "number", "minimum": 0},
            },
        },
        "mobile": {
            "type": "object",
            "required": ["model", "required_operators"],
            "description": "ONNX Runtime Mobile artifacts, present when the package asked for them",
            "properties": {
                "model": {**_PATH, "description": "the model in ORT format (model.ort)"},
                "required_operators": {
                    **_PATH,
                    "description": "required_operators.config for a reduced-operator build",
                },
                "onnxruntime": {
                    "type": "string",
                    "description": "version that wrote the .ort (ORT format compatibility)",
                },
                "target_platform": {
                    "type": "string",
                    "description": "what the .ort's baked-in optimizations assume (arm, amd64)",
                },
                "fixed_shapes": {
                    "type": ["object", "null"],
                    "description": "input name -> the fixed shape the .ort was built with",
                    "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                },
                "usability": {
                    "type": "object",
                    "description": "onnxruntime's mobile usability check, per execution provider",
                    "additionalProperties": {"$ref": "#/$defs/usability"},
                },
            },
        },
        "lineage": {"type": "object", "description": "recipe, stage configs, library versions"},
        "provenance": {"$ref": "#/$defs/provenance"},
        "generation": {"$ref": "#/$defs/generation"},
        "metrics": {"type": "object", "description": "accuracy etc. per model variant"},
        "benchmarks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {
                        "type": "string",
                        "description": "measured, host-emulated or estimated: never mixed up",
                    }
                },
            },
        },
    },
    "$defs": {
        "generation": {
            "type": "object",
            "required": ["kv_cache", "eos_token_ids", "sample"],
            "description": "schema 1.2+: how a language model (task text-generation) decodes: "
            "its KV-cache layout, stop tokens, defaults, and the recorded greedy generation every "
            "runtime must reproduce token for token; see docs/package-format.md#language-models",
            "properties": {
                "tokenizer": {**_PATH, "description": "tokenizer.json (text in and out)"},
                "sample": {**_PATH, "description": "samples/generation.json: prompts and ids"},
                "chat_template": {
                    **_PATH,
                    "description": "chat_template.jinja: the Jinja template that turns chat "
                    "messages into the prompt (docs/runtimes.md#text-and-chat)",
                },
                "stop_strings": {
                    "type": "array",
                    "items": _STRING,
                    "description": "generation ends before any of these texts (the model's "
                    "generation config)",
                },
                "eos_token_ids": {"type": "array", "items": {"type": "integer"}},
                "bos_token_id": {"type": ["integer", "null"]},
                "context_length": {"type": ["integer", "null"], "minimum": 1},
                "kv_cache": {
                    "type": "object",
                    "required": ["layers", "kv_heads", "head_dim", "dtype"],
                    "description": "past_key_values.{i}.key/value in, present.{i}.key/value out; "
                    "each (batch, kv_heads, sequence, head_dim)",
                    "properties": {
                        "layers": {"type": "integer", "minimum": 1},
                        "kv_heads": {"type": "integer", "minimum": 1},
                        "head_dim": {"type": "integer", "minimum": 1},
                        "dtype": _STRING,
                        "bytes_per_token": {"type": "integer", "minimum": 0},
                    },
                },
                "defaults": {
                    "type": "object",
                    "description": "max_new_tokens, temperature, top_k, top_p",
                    "properties": {
                        "max_new_tokens": {"type": "integer", "minimum": 1},
                        "temperature": {"type": "number", "minimum": 0},
                        "top_k": {"type": "integer", "minimum": 0},
                        "top_p": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
        "provenance": {
            "type": "object",
            "description": "schema 1.1+: where the model came from (informational; readers "
            "need none of it); see docs/package-format.md#provenance",
            "properties": {
                "teacher": {
                    "type": "object",
                    "required": ["source", "license", "terms"],
                    "description": "the teacher: source as given, revision, weight hashes, "
                    "license and terms",
                    "properties": {
                        "source": _STRING,
                        "license": {"type": "object", "required": ["id"]},
                        "terms": {"type": "object", "required": ["id"]},
                        "weights": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "student_init": {
                    "type": "object",
                    "required": ["kind"],
                    "description": "what the student started from: derived from the teacher, "
                    "or fresh",
                    "properties": {"kind": _STRING},
                },
                "data": {
                    "type": "array",
                    "description": "each data source: path or name, sha256, rows, license, "
                    "generated_by",
                    "items": {"type": "object", "required": ["source"]},
                },
                "method": {"type": "object", "description": "losses, temperature, steps, ..."},
                "accepted": {
                    "type": "array",
                    "description": "terms accepted for the build: which, with what flag, when",
                    "items": {
                        "type": "object",
                        "required": ["terms", "flag", "at"],
                        "properties": {"terms": _STRING, "flag": _STRING, "at": _STRING},
                    },
                },
            },
        },
        "tensor": {
            "type": "object",
            "required": ["name", "dtype", "shape"],
            "properties": {
                "name": _STRING,
                "dtype": {"type": "string", "description": "numpy name: float32, int64, ..."},
                "shape": {"type": "array", "items": _SHAPE_DIM},
            },
        },
        "usability": {
            "type": "object",
            "required": ["suitability"],
            "properties": {
                "suitability": {
                    "type": "string",
                    "description": "YES, MAYBE or NO: should this EP run the model well",
                },
                "nodes": {"type": "integer", "minimum": 0},
                "supported_nodes": {"type": "integer", "minimum": 0},
                "partitions": {"type": "integer", "minimum": 0},
                "unsupported_ops": {"type": "array", "items": _STRING},
                "with_fixed_shapes": {
                    "type": "string",
                    "description": "suitability if the dynamic input shapes were fixed",
                },
            },
        },
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _json_type(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return _JSON_NAMES[type(value)]
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is(value: object, name: str) -> bool:
    # bool is an int in Python; a size or shape of `true` is a packaging bug, not a number.
    if isinstance(value, bool):
        return name == "boolean"
    if name == "integer" and isinstance(value, float):
        return value.is_integer()  # JSON Schema: 1.0 is an integer (JSON has one number type)
    return isinstance(value, _TYPES[name])


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return root["$defs"][ref.removeprefix("#/$defs/")]


def _fail(path: str, message: str) -> InvalidPackageError:
    return InvalidPackageError(f"manifest.json: field '{path}' {message}")


def _check(value: Any, schema: dict[str, Any], path: str, root: dict[str, Any]) -> None:
    schema = _resolve(schema, root)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is(value, n) for n in names):
            raise _fail(path, f"must be {' or '.join(names)}, got {_json_type(value)}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        what = schema.get("description") or f"a string matching {schema['pattern']}"
        raise _fail(path, f"= {value[:40]!r} is not {what}")
    if _is(value, "number") and "minimum" in schema and value < schema["minimum"]:
        raise _fail(path, f"must be >= {schema['minimum']}, got {value}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise _fail(path, f"must list at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], f"{path}[{i}]", root)
    if isinstance(value, dict):
        prefix = f"{path}." if path else ""
        for key in schema.get("required", []):
            if key not in value:
                raise InvalidPackageError(f"manifest.json: missing required field '{prefix}{key}'")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                _check(item, properties[key], prefix + key, root)
            elif isinstance(extra, dict):
                _check(item, extra, prefix + key, root)
            elif extra is False:
                raise _fail(prefix + key, "is not allowed here")


def check(manifest: Any, schema: dict[str, Any] = MANIFEST_SCHEMA) -> None:
    """Validate `manifest` against `schema`; raise InvalidPackageError naming the first bad field.

    Supports the keywords MANIFEST_SCHEMA uses: type, required, properties,
    additionalProperties, items, minItems, minimum, pattern and local `#/$defs/` refs.
    """
    _check(manifest, schema, "", schema)


def schema_json() -> str:
    """The schema as the committed file holds it: stable key order, trailing newline."""
    return json.dumps(MANIFEST_SCHEMA, indent=2) + "\n"
