"""load() and Package: a verified package with an onnxruntime session behind it."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .errors import (
    EdgepackRuntimeError,
    InputError,
    InvalidPackageError,
    SampleMismatchError,
    UnsupportedPackageError,
)
from .manifest import parse_json, referenced_files
from .postprocessing import Postprocessor, Prediction, make_postprocessor, package_labels
from .preprocessing import Feeds, Preprocessor, check_finite, finite_number, make_preprocessor
from .reader import open_package
from .signature import PublicKeyLike

# A model onnxruntime cannot parse is a broken package; one it parses but cannot run here
# (an op, opset or provider it lacks) is a package this install does not support.
_BROKEN_MODEL = (ort_state.InvalidProtobuf, ort_state.InvalidGraph)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@dataclass
class SampleCheck:
    """The result of replaying the package's recorded samples."""

    ok: bool
    count: int  # number of samples replayed
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # per compared tensor name
    message: str = ""


class Package:
    """A loaded, verified package. Create one with `load()`."""

    def __init__(
        self,
        manifest: dict[str, Any],
        session: ort.InferenceSession,
        files: dict[str, bytes],
        preprocess: Preprocessor,
        postprocess: Postprocessor,
        signature: str = "not checked",
    ) -> None:
        self.manifest = manifest
        # "verified by ed25519:<fingerprint>", "not checked" (signed, no key given) or "unsigned"
        self.signature = signature
        self._session = session
        self._files = files  # verified bytes of the samples and tokenizer, kept for later
        self._preprocess = preprocess
        self._postprocess = postprocess
        self._input_names = {i.name for i in session.get_inputs()}
        self._lm = None

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list[str]:
        return package_labels(self.manifest)

    def __repr__(self) -> str:
        return f"<Package {self.name} {self.version} ({self.task})>"

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary: what the package is, its I/O, and what was measured."""
        m = self.manifest
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "schema_version": m["schema_version"],
            "inputs": m["inputs"],
            "outputs": m["outputs"],
            "preprocessing": m.get("preprocessing", {"type": "none"}),
            "postprocessing": m.get("postprocessing", {"type": "none"}),
            "labels": self.labels,
            "metrics": m.get("metrics", {}),
            "files": len(m["files"]),
            "model_size": m["files"][m["model"]]["size"],
            "signature": self.signature,
            "mobile": m.get("mobile"),
        }

    def preprocess(self, raw: Any) -> Feeds:
        """Raw app input -> model feeds, per the manifest's preprocessing."""
        return self._preprocess(raw)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on feeds by input name; return every output by name."""
        unknown = sorted(set(feeds) - self._input_names)
        missing = sorted(self._input_names - set(feeds))
        if unknown or missing:
            raise InputError(
                f"feeds must be exactly the model inputs {sorted(self._input_names)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
            )
        arrays = {k: check_finite(k, np.asarray(v)) for k, v in feeds.items()}
        try:
            values = self._session.run(None, arrays)
        except ort_state.InvalidArgument as exc:
            # Wrong rank, size or dtype: the caller's input, not the package.
            raise InputError(f"onnxruntime rejected the input: {_one_line(exc)}") from exc
        except Exception as exc:  # pybind errors share no base class beyond Exception
            raise EdgepackRuntimeError(f"onnxruntime failed to run: {_one_line(exc)}") from exc
        return {o.name: v for o, v in zip(self._session.get_outputs(), values, strict=True)}

    def predict(self, raw: Any) -> Prediction:
        """Preprocess, run and postprocess: labels and scores for a classifier."""
        feeds = self.preprocess(raw)
        return self._postprocess(self.run(feeds), feeds)

    def check_samples(self) -> SampleCheck:
        """Replay the recorded samples and compare with the recorded tensors (atol/rtol)."""
        samples = self.manifest.get("samples")
        if not samples:
            raise InvalidPackageError("manifest.json: the package records no samples to check")
        # Finite, as in every runtime (parse_json refuses 1e999; this covers an edited manifest):
        # an infinite atol lets any output through, a NaN one fails every sample.
        atol, rtol = (finite_number(samples, k, 0.0, "samples") for k in ("atol", "rtol"))
        recorded = {n: self._load_npy(p) for n, p in samples.get("inputs", {}).items()}
        diffs: dict[str, float] = {}
        failures: list[str] = []
        if "images" in samples:  # image files: PNG exactly, JPEG within jpeg_atol
            feeds = self._image_feeds(samples, recorded, diffs, failures)
            recorded = {}
        elif "raw" in samples:
            feeds = self.preprocess(self._load_raw(samples["raw"]))
        else:
            feeds = dict(recorded)
        got: dict[str, np.ndarray] = {**feeds, **self._run_in_batches(feeds)}
        recorded.update({n: self._load_npy(p) for n, p in samples["outputs"].items()})

        for name, expected in recorded.items():
            if name not in got:
                raise InvalidPackageError(f"manifest.json: samples name unknown tensor {name!r}")
            actual = got[name]
            if actual.shape != expected.shape:
                diffs[name] = float("inf")
                failures.append(f"{name}: shape {actual.shape} != recorded {expected.shape}")
                continue
            a, e = actual.astype(np.float64), expected.astype(np.float64)
            diffs[name] = float(np.max(np.abs(a - e), initial=0.0))
            if not np.allclose(a, e, atol=atol, rtol=rtol):
                failures.append(f"{name}: max abs diff {diffs[name]:.3g}")
        count = len(next(iter(got.values())))
        generated = self._replay_generation(failures)
        if failures:
            message = (
                f"{count} samples do not reproduce within atol={atol:g}, rtol={rtol:g}: "
                + "; ".join(failures)
            )
        else:
            listed = ", ".join(f"{n}={d:.3g}" for n, d in diffs.items())
            message = f"{count} samples reproduce within atol={atol:g}, rtol={rtol:g} ({listed})"
            message += generated
        return SampleCheck(ok=not failures, count=count, max_abs_diff=diffs, message=message)

    @property
    def lm(self):
        """The language model of a text-generation package (LanguageModel), made on first use."""
        if self._lm is None:
            from .lm import LanguageModel

            self._lm = LanguageModel(self.manifest, self._session, self._files)
        return self._lm

    def generate(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
        chat: bool = False,
    ) -> Iterator[str]:
        """Stream the continuation of `prompt`, piece by piece, with the KV cache (needs
        `tokenizers`). `prompt` is a text, or chat messages [{"role", "content"}, ...] that the
        package's chat template turns into the prompt (chat=True makes a text one user message;
        needs jinja2); the pieces are then the assistant's reply. Unset options take the
        package's generation defaults; temperature 0 is greedy; generation ends at
        max_new_tokens, an EOS token, or before a stop string (`stop` and the package's)."""
        return self.lm.stream(
            prompt,
            stop,
            chat,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )

    def _replay_generation(self, failures: list[str]) -> str:
        """A language model's recorded greedy generation, replayed token for token."""
        if not self.manifest.get("generation"):
            return ""
        try:
            done = self.lm.replay()
        except SampleMismatchError as exc:
            failures.append(str(exc))
            return ""
        return f"; generation: {done['prompts']} prompts, {done['tokens']} greedy tokens reproduced"

    def verify(self) -> SampleCheck:
        """check_samples, raising SampleMismatchError when the samples do not reproduce.

        File integrity was already checked by load(); this checks the numbers.
        """
        result = self.check_samples()
        if not result.ok:
            raise SampleMismatchError(result.message)
        return result

    def _run_in_batches(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """run(), in slices of the model's batch size when it is fixed (a mobile model built
        with fixed shapes takes 1 row at a time; the samples hold several)."""
        rows = len(next(iter(feeds.values())))
        dims = {i.shape[0] for i in self._session.get_inputs() if i.shape}
        batch = dims.pop() if len(dims) == 1 else None
        if not isinstance(batch, int) or batch <= 0 or batch >= rows or rows % batch:
            return self.run(feeds)
        parts = [
            self.run({k: v[i : i + batch] for k, v in feeds.items()}) for i in range(0, rows, batch)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _image_feeds(self, samples, recorded, diffs, failures) -> Feeds:
        """Each sample image through this runtime's decoder and preprocessing, compared with
        the recorded model input: a PNG within atol (the same tensor in every runtime), a JPEG
        within samples.jpeg_atol (decoders differ). The model then runs on this runtime's own
        tensor for PNGs and on the recorded one for JPEGs."""
        from .image import ImagePreprocessor

        pre = self._preprocess
        if not isinstance(pre, ImagePreprocessor) or pre.input not in recorded:
            raise InvalidPackageError(
                "manifest.json: samples.images needs image preprocessing and a recorded input"
            )
        expected = recorded[pre.input]
        paths = samples["images"]
        if len(paths) != len(expected):
            raise InvalidPackageError(
                f"manifest.json: {len(paths)} sample images for {len(expected)} recorded inputs"
            )
        rows = []
        for i, path in enumerate(paths):
            x = pre.one(self._files[path], path)
            jpeg = path.lower().endswith((".jpg", ".jpeg"))
            tol = finite_number(samples, "jpeg_atol" if jpeg else "atol", 0.0, "samples")
            diff = float(np.max(np.abs(x.astype(np.float64) - expected[i]), initial=0.0))
            key = "jpeg" if jpeg else "png"
            diffs[f"{pre.input} ({key})"] = max(diffs.get(f"{pre.input} ({key})", 0.0), diff)
            if x.shape != expected[i].shape or not diff <= tol:
                failures.append(f"{path}: preprocessed max abs diff {diff:.3g} > {tol:g}")
            rows.append(expected[i] if jpeg else x)
        return {pre.input: np.stack(rows).astype(expected.dtype)}

    def _load_raw(self, path: str) -> Any:
        """Raw sample inputs: an .npy array, or a JSON list (the strings of a text package)."""
        if not path.endswith(".json"):
            return self._load_npy(path)
        return parse_json(self._files[path], path)

    def _load_npy(self, path: str) -> np.ndarray:
        try:
            return np.load(io.BytesIO(self._files[path]), allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InvalidPackageError(f"{path}: not a readable .npy array ({exc})") from exc


def _check_options(threads: int | None, providers: Sequence[str] | None) -> list[str]:
    """Validate the caller's session options up front, before any file is read."""
    valid = isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1
    if threads is not None and not valid:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    # CPU unless asked: the same numbers on every device, and no surprise GPU/cloud provider.
    providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ValueError(f"providers {missing} are not in this onnxruntime (have: {available})")
    return providers


def _session(
    model: bytes | str, path: str, threads: int | None, providers: list[str]
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings would clutter an app's stderr
    if threads is not None:
        options.intra_op_num_threads = threads
    if path.endswith(".ort"):
        options.add_session_config_entry("session.load_model_format", "ORT")
    try:
        return ort.InferenceSession(model, options, providers=providers)
    except _BROKEN_MODEL as exc:
        raise InvalidPackageError(
            f"{path}: onnxruntime cannot parse the model: {_one_line(exc)}"
        ) from exc
    except Exception as exc:  # pybind errors share no base class beyond Exception
        raise UnsupportedPackageError(
            f"{path}: onnxruntime {ort.__version__} cannot load the model: {_one_line(exc)}"
        ) from exc


def load(
    path: str | os.PathLike[str],
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    pubkey: PublicKeyLike | None = None,
    model: str | None = None,
) -> Package:
    """Open a `.edgepack` zip or package folder, verify it, and create the model session.

    Order matters: with `pubkey` (a PEM public key file or PEM bytes), manifest.sig is checked
    against manifest.json before anything is parsed, and a missing or mismatching signature
    raises SignatureError. Then the container, the manifest and its schema major, every file's
    size, then every file's sha256 (all of it `open_package`, see reader.py); the model reaches
    onnxruntime only once all of that has passed.
    `threads` sets onnxruntime's intra-op threads; `providers` defaults to the CPU provider.
    `model` picks another listed model file to run, e.g. manifest["mobile"]["model"] (model.ort).
    Bad option values raise ValueError; everything about the package an EdgepackRuntimeError.
    """
    providers = _check_options(threads, providers)
    with open_package(path, pubkey=pubkey) as reader:
        manifest = reader.manifest
        model_path = manifest["model"] if model is None else model
        if model_path not in manifest["files"]:
            raise InvalidPackageError(f"{model_path}: not a file of this package")
        # A folder's model is loaded from its file (no copy of it in Python's memory: a peak
        # of twice the model otherwise), hashed before and again after onnxruntime read it.
        on_disk = reader.local_path(model_path)
        keep = {*referenced_files(manifest)} - {model_path}
        keep |= {model_path} if on_disk is None else set()
        files = reader.verify_files(keep=keep)
        # Pre/postprocessing blocks are checked before the (slower) session is built.
        preprocess = make_preprocessor(manifest, files)
        postprocess = make_postprocessor(manifest)
        model_source = str(on_disk) if on_disk is not None else files.pop(model_path)
        session = _session(model_source, model_path, threads, providers)
        if on_disk is not None:
            reader.verify(model_path)
    _check_io(manifest, session, model_path)
    return Package(manifest, session, files, preprocess, postprocess, reader.signature)


def _check_io(manifest: dict[str, Any], session: ort.InferenceSession, model_path: str) -> None:
    """The manifest's inputs/outputs must be the model's: apps and samples rely on the names."""
    declared = [sorted(t["name"] for t in manifest[k]) for k in ("inputs", "outputs")]
    actual = [sorted(t.name for t in ts) for ts in (session.get_inputs(), session.get_outputs())]
    if declared != actual:
        raise InvalidPackageError(
            f"manifest.json: inputs/outputs {declared[0]}/{declared[1]} do not match "
            f"{model_path}: {actual[0]}/{actual[1]}"
        )
