"""`edgepack run`: predict with a package on raw inputs, through the Python runtime only."""

from __future__ import annotations

from pathlib import Path

import click

from packager.errors import InputFileError


@click.command()
@click.argument("package", type=click.Path())
@click.option(
    "--input",
    "input_file",
    type=click.Path(),
    help=".npy (or .json list) of raw inputs.",
)
@click.option("--text", "texts", multiple=True, help="Raw text for a text package; repeatable.")
@click.option("--top", default=1, show_default=True, help="Labels to print per example.")
def run(package: str, input_file: str | None, texts: tuple[str, ...], top: int) -> None:
    """Predict with PACKAGE on raw inputs, through the Python runtime only."""
    import numpy as np

    from packager.runtime import load_runtime

    if (input_file is None) == (not texts):
        raise InputFileError("run: give either --input FILE or --text TEXT (repeatable)")
    rt = load_runtime()
    pkg = rt.load(package)
    if texts:
        raw = list(texts)
    else:
        path = Path(input_file)
        if not path.is_file():
            raise InputFileError(f"--input {input_file}: file not found")
        try:
            raw = (
                np.load(path, allow_pickle=False)
                if path.suffix == ".npy"
                else np.asarray(_read_json(path))
            )
        except ValueError as err:
            raise InputFileError(f"--input {input_file}: cannot read ({err})") from None
    pred = pkg.predict(raw)
    if pred.embeddings is not None:  # feature-extraction: the vector's norm and first values
        for i, e in enumerate(pred.embeddings):
            head = ", ".join(f"{v:+.4f}" for v in e[:8])
            click.echo(f"{i}: dim {len(e)}, norm {np.linalg.norm(e):.4f}, [{head}, ...]")
        return
    if pred.labels is None:
        raise InputFileError(f"{package}: its postprocessing gives neither labels nor embeddings")
    for i in range(len(pred.labels)):
        order = np.argsort(-pred.probabilities[i])[:top]
        best = ", ".join(f"{pkg.labels[j]} ({pred.probabilities[i][j]:.3f})" for j in order)
        click.echo(f"{i}: {best}")


def _read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"--input {path}: not valid JSON ({err.msg} at line {err.lineno})"
        ) from None
    except RecursionError:
        raise InputFileError(f"--input {path}: JSON nested too deeply to be an input") from None
