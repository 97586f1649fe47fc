"""`edgepack run`: predict with a package on raw inputs, through the Python runtime only."""

from __future__ import annotations

from pathlib import Path

import click

from packager.cli.options import Finite, regular_file
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
@click.option(
    "--image", "images", multiple=True, help="A PNG/JPEG file for an image package; repeatable."
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    help="Labels to print per example [default: 5 for images, else 1].",
)
@click.option("--prompt", help="A language-model package: the text to continue (streamed).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="--prompt: tokens to generate.")
@click.option("--temperature", type=Finite(min=0), help="--prompt: 0 is greedy.")
@click.option("--top-k", type=click.IntRange(min=0), help="--prompt: sample from the k likeliest.")
@click.option(
    "--top-p", type=click.FloatRange(min=0, max=1, min_open=True), help="--prompt: nucleus mass."
)
@click.option("--seed", type=click.IntRange(min=0), help="--prompt: sampling seed.")
@click.option("--stop", multiple=True, help="--prompt: stop before this text; repeatable.")
@click.option(
    "--chat",
    is_flag=True,
    help="--prompt is a user's message: the package's chat template makes the prompt, and the "
    "assistant's reply is printed.",
)
def run(
    package: str,
    input_file: str | None,
    texts: tuple[str, ...],
    images: tuple[str, ...],
    top: int | None,
    prompt: str | None,
    **generation,
) -> None:
    """Predict with PACKAGE on raw inputs (or continue --prompt), through the Python runtime only."""
    import numpy as np

    from packager.edge_runtime import load_runtime

    given = sum(x is not None and x != () for x in (input_file, texts, images, prompt))
    if given != 1:
        raise InputFileError(
            "run: give either --input FILE or --text TEXT or --image FILE (repeatable), or "
            "--prompt TEXT for a language model"
        )
    if generation["chat"] and prompt is None:
        raise InputFileError("run: --chat needs --prompt (the user's message)")
    top = top or (5 if images else 1)
    rt = load_runtime()
    pkg = rt.load(package)
    if prompt is not None:
        _generate(pkg, prompt, generation)
        return
    for image in images:
        regular_file("--image", Path(image))
    if texts or images:
        raw = list(texts or images)
    else:
        path = Path(input_file)
        regular_file("--input", path)
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
        click.echo(f"{images[i] if images else i}: {best}")


def _generate(pkg, prompt: str, options: dict) -> None:
    """Stream the continuation to stdout as it is generated (text packages with a generation
    block only): after the prompt, or alone with --chat (the assistant's reply)."""
    if not pkg.manifest.get("generation"):
        raise InputFileError(
            f"--prompt: {pkg.name} is not a language-model package (task {pkg.task})"
        )
    pieces = iter(pkg.generate(prompt, **options))
    first = next(pieces, "")  # a refused prompt is its error line alone, not after the prompt
    click.echo(first if options["chat"] else prompt + first, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


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
