"""Text data: streamed from .txt/.jsonl/.csv/.parquet files or datasets.save_to_disk folders,
split once into train/val/test JSON-lines files, tokenised later with the teacher's tokenizer.

The source is read `stream_batch` rows at a time and never held whole: each row goes to a split
by a seeded draw, and reading stops as soon as every capped split is full. Tokenisation uses the
`tokenizers` library configured exactly as the device runtime configures it (truncation at
max_length, padding to the longest text of a batch), so the packager and the runtime feed the
model identical ids.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from packager.errors import InputFileError, RecipeError, one_line

if TYPE_CHECKING:
    from packager.config import DataConfig

SPLITS = ("train", "val", "test")
SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
INPUT_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


def split_of(draw: float, cfg: DataConfig) -> str:
    """The split a row goes to, from its uniform draw in [0, 1): test, then val, then train."""
    if draw < cfg.test_fraction:
        return "test"
    return "val" if draw < cfg.test_fraction + cfg.val_fraction else "train"


def read_rows(
    path: Path, n: int, text_column: str = "text", what: str | None = None, objects: bool = True
) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows (dicts) from a text file or a save_to_disk folder, `n` at a time: the
    one reader of text data, for training splits and for calibration/evaluation files. A .txt
    line is a row {text_column: line} (blank lines too: callers skip empty texts); with
    `objects=False` a JSON line may also be a list (a calibration file of raw feature rows)."""
    path, what = Path(path), what or str(path)
    if path.is_dir():
        yield from _saved_dataset(path, n, what)
        return
    if not path.exists():
        raise InputFileError(f"{what}: file or folder not found")
    from packager.edge_runtime import MAX_DATA_BYTES, user_file

    user_file(path, MAX_DATA_BYTES, what)  # a FIFO or device: refused, not waited on
    if path.suffix not in SUFFIXES:
        raise InputFileError(
            f"{what}: unsupported text file {path.suffix!r} "
            f"(use {', '.join(SUFFIXES)} or a datasets save_to_disk folder)"
        )
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=n):
                yield batch.to_pylist()
            return
        with path.open(encoding="utf-8", newline="") as f:
            yield from _chunked(_lines(f, path, text_column, what, objects), n)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputFileError(f"{what}: cannot read ({err})") from None
    except Exception as err:  # pyarrow raises its own error types on a bad parquet file
        if type(err).__module__.startswith("pyarrow"):
            raise InputFileError(f"{what}: cannot read ({err})") from None
        raise


def _lines(f, path: Path, text_column: str, what: str, objects: bool) -> Iterator[Any]:
    if path.suffix == ".csv":
        yield from csv.DictReader(f)
    elif path.suffix == ".txt":
        yield from ({text_column: line.rstrip("\n")} for line in f)
    else:
        for i, line in enumerate(f, 1):
            if line.strip():
                yield _json_line(what, i, line, objects)


def _chunked(rows: Iterator[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _json_line(what: str, lineno: int, line: str, objects: bool = True) -> Any:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputFileError(f"{what}: line {lineno}: not JSON ({err.msg})") from None
    if objects and not isinstance(row, dict):
        raise InputFileError(f"{what}: line {lineno}: expected a JSON object")
    return row


def _saved_dataset(path: Path, n: int, what: str) -> Iterator[list[dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise InputFileError(f"{what}: not a datasets save_to_disk folder ({err})") from None
    parts = list(ds.values()) if isinstance(ds, datasets.DatasetDict) else [ds]
    for part in parts:  # the folder's own splits are pooled, then split by data.seed
        for batch in part.iter(batch_size=n):
            keys = list(batch)
            yield [
                dict(zip(keys, values, strict=True))
                for values in zip(*batch.values(), strict=False)
            ]


def build_splits(cfg: DataConfig, folder: Path) -> dict[str, Any]:
    """Stream the source into train/val/test .jsonl files in `folder`; return the data meta."""
    rng = np.random.default_rng(cfg.seed)
    caps = {"train": cfg.limit, "val": cfg.eval_limit, "test": cfg.eval_limit}
    sizes = dict.fromkeys(SPLITS, 0)
    raw_labels: dict[str, list[Any]] = {s: [] for s in SPLITS}
    has_labels: bool | None = None
    files = {s: (folder / f"{s}.jsonl").open("w", encoding="utf-8") for s in SPLITS}
    try:
        for batch in read_rows(
            Path(cfg.source), cfg.stream_batch, cfg.text_column, f"data.source {cfg.source}"
        ):
            draws = rng.random(len(batch))
            for row, u in zip(batch, draws, strict=True):
                text = row.get(cfg.text_column)
                if text is None:
                    raise InputFileError(
                        f"data.source {cfg.source}: no text column {cfg.text_column!r} "
                        f"(columns: {', '.join(map(str, row))}); set data.text_column"
                    )
                text = str(text).strip()
                if not text:
                    continue
                split = split_of(u, cfg)
                if caps[split] is not None and sizes[split] >= caps[split]:
                    continue
                labelled = bool(cfg.label_column) and row.get(cfg.label_column) is not None
                if has_labels is None:
                    has_labels = labelled
                elif labelled != has_labels:
                    raise InputFileError(
                        f"data.source {cfg.source}: some rows have a {cfg.label_column!r} label "
                        "and some do not"
                    )
                if labelled:
                    raw_labels[split].append(row[cfg.label_column])
                files[split].write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                sizes[split] += 1
            if all(caps[s] is not None and sizes[s] >= caps[s] for s in SPLITS):
                break  # every split is full: the rest of the source is never read
    finally:
        for f in files.values():
            f.close()
    empty = [s for s in SPLITS if sizes[s] == 0]
    if empty:
        raise InputFileError(
            f"data.source {cfg.source}: no examples for the {', '.join(empty)} split(s) "
            f"({sum(sizes.values())} texts read); add data or raise val/test_fraction"
        )
    labels: list[str] = []
    if has_labels:
        labels, index = _label_index(cfg, [v for s in SPLITS for v in raw_labels[s]])
        for s in SPLITS:  # second pass over the (small) split files: names -> class indices
            path = folder / f"{s}.jsonl"
            rows = path.read_text(encoding="utf-8").splitlines()
            with path.open("w", encoding="utf-8") as f:
                for line, raw in zip(rows, raw_labels[s], strict=True):
                    f.write(line[:-1] + f', "label": {index[_key(raw)]}}}\n')
    return {
        "format": "text",
        "modality": "text",
        "file": "train.jsonl",
        "label_column": cfg.label_column,
        "source": str(cfg.source),
        "sizes": sizes,
        "labels": labels,
        "max_length": cfg.max_length,
        "stream_batch": cfg.stream_batch,
        "preprocessing": {"type": "text", "max_length": cfg.max_length},
    }


def _key(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool | int | np.integer) else str(value)


def _label_index(cfg: DataConfig, values: list[Any]) -> tuple[list[str], dict[str, int]]:
    """Class names and name -> index: data.label_names order, integer labels as they are, else
    the sorted label names."""
    seen = sorted({_key(v) for v in values})
    numeric = all(s.lstrip("-").isdigit() for s in seen)
    if cfg.label_names:
        names = list(cfg.label_names)
        index = {n: i for i, n in enumerate(names)}
        if numeric and not set(seen) <= set(index):
            index = {str(i): i for i in range(len(names))}
    elif numeric:
        top = max(int(s) for s in seen)
        names = [str(i) for i in range(top + 1)]
        index = {n: i for i, n in enumerate(names)}
    else:
        names = seen
        index = {n: i for i, n in enumerate(names)}
    unknown = [s for s in seen if s not in index]
    if unknown or any(s.startswith("-") for s in seen if numeric):
        raise RecipeError(
            f"data.source {cfg.source}: labels {unknown or seen[:3]} are not in "
            f"data.label_names {names}"
        )
    return names, index


def read_split(
    folder: Path, split: str, limit: int | None = None
) -> tuple[list[str], np.ndarray | None]:
    """The texts (and integer labels, when the data has them) of one split in `folder`."""
    texts, labels = [], []
    with (Path(folder) / f"{split}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(texts) >= limit:
                break
            row = json.loads(line)
            texts.append(row["text"])
            if "label" in row:
                labels.append(row["label"])
    return texts, (np.asarray(labels, dtype=np.int64) if labels else None)


def stream_split(folder: Path, split: str, chunk: int) -> Iterator[tuple[list[str], list[int]]]:
    """(texts, labels) of one split in `folder`, `chunk` rows at a time, in file order."""
    texts: list[str] = []
    labels: list[int] = []
    with (Path(folder) / f"{split}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row.get("label", -1))
            if len(texts) == chunk:
                yield texts, labels
                texts, labels = [], []
    if texts:
        yield texts, labels


def pad_token(folder: Path, tok) -> tuple[str, int]:
    """The pad token and id the tokenizer config names ([PAD] / 0 when it names none)."""
    name = "[PAD]"
    cfg_file = folder / "tokenizer_config.json"
    if cfg_file.is_file():
        value = json.loads(cfg_file.read_text()).get("pad_token")
        value = value.get("content") if isinstance(value, dict) else value
        name = value or name
    pad_id = tok.token_to_id(name)
    return name, 0 if pad_id is None else int(pad_id)


def load_tokenizer(path: str | Path, max_length: int):
    """A tokenizer.json (or the folder holding it), truncating at max_length and padding to the
    batch's longest text with the pad token its tokenizer_config.json names: configured exactly
    as the device runtime configures it."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise InputFileError(
            "text data needs the tokenizers package: pip install tokenizers"
        ) from None

    p = Path(path)
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        raise InputFileError(f"{path}: no tokenizer.json (a fast tokenizer is needed)")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as err:  # the tokenizers library raises plain Exceptions on a bad file
        raise InputFileError(f"{file}: not a tokenizer.json ({one_line(err)})") from None
    name, pad_id = pad_token(file.parent, tok)
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=pad_id, pad_token=name)
    return tok


def encode(tok, texts: list[str], names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Model feeds for `texts`: int64 arrays for the named inputs (default: all three)."""
    enc = tok.encode_batch(texts)
    return {
        name: np.asarray([getattr(e, INPUT_FIELDS[name]) for e in enc], dtype=np.int64)
        for name in names or INPUT_FIELDS
    }
