"""`edgepack build` and `edgepack recipes`."""

from __future__ import annotations

import click

from packager.limits import MAX_PROCESSES


@click.command()
@click.argument("recipe", required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.FIELD=VALUE",
    help="Override a recipe field.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate, print the stage plan and what is cached, run nothing.",
)
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Stage cache [default: .edgepack/cache]."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the final table and errors.")
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(dir_okay=False),
    help="Sign the published package with this private key (edgepack keygen).",
)
@click.option(
    "--sign-format",
    type=click.Choice(["ed25519", "model-signing"]),
    default="ed25519",
    show_default=True,
    help="ed25519: manifest.sig inside the package (edgepack runtimes check it); model-signing: "
    "an OpenSSF model-signing bundle NAME.edgepack.sig beside it (model_signing verify checks "
    "it; needs an ECDSA key: edgepack keygen --type ecdsa-p256).",
)
@click.option(
    "--accept-terms",
    "accept_terms",
    multiple=True,
    metavar="ID",
    help="Accept the teacher's terms (e.g. llama3): recorded in the manifest and the model card; "
    "lets a provenance.policy strict build go on. Repeatable.",
)
@click.option(
    "--nproc",
    type=click.IntRange(1, MAX_PROCESSES),
    help="Run distillation (every modality) and the teacher's cached outputs under torchrun "
    "with N processes (DDP; gloo on CPU, nccl on GPU): the same as --set distill.nproc=N. "
    "Several machines: EDGEPACK_TORCHRUN_ARGS holds torchrun's rendezvous flags "
    "(docs/distill-compute.md).",
)
@click.option(
    "--device",
    metavar="auto|cpu|cuda|cuda:N|mps",
    help="Where training and teacher passes run: the same as --set distill.device=DEVICE.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    help="Their precision (autocast): the same as --set distill.precision=PRECISION.",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="Apply the recipe's profiles.NAME overrides (e.g. gpu) before --set.",
)
@click.option(
    "--allow-download", is_flag=True,
    help="A teacher given as a Hub id (hf:OWNER/NAME) not in the local Hugging Face cache: "
    "download it into the cache first (else the build stays offline).",
)  # fmt: skip
def build(
    recipe: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    cache_dir: str | None,
    quiet: bool,
    sign_key: str | None,
    sign_format: str,
    accept_terms: tuple[str, ...],
    nproc: int | None,
    device: str | None,
    precision: str | None,
    profile: str | None,
    allow_download: bool,
) -> None:
    """Distill, export, quantize, evaluate, bench and package RECIPE [default: models/digits.yaml]."""
    from packager import pipeline
    from packager.cli.render import make_console, print_build, print_plan
    from packager.progress import Reporter
    from packager.recipe import load_recipe, resolve_recipe_path, with_accepted_terms

    flags = {"nproc": nproc, "device": device, "precision": precision}
    overrides = (*overrides, *(f"distill.{k}={v}" for k, v in flags.items() if v is not None))
    r = with_accepted_terms(load_recipe(recipe, overrides, profile), accept_terms)
    if allow_download:
        from packager.hub import ensure_source

        ensure_source(r.teacher.source)
    # Stage warnings wait for the table: said once, after the measurement they are about.
    reporter = Reporter(verbose=not quiet, hold_warnings=True)
    try:
        result = pipeline.build(
            r,
            cache_dir=cache_dir,
            dry_run=dry_run,
            reporter=reporter,
            sign_key=sign_key,
            sign_format=sign_format,
            recipe_file=resolve_recipe_path(recipe),
        )
    except BaseException:
        reporter.flush_warnings()  # what the stages said before the failure
        raise
    console = make_console()
    if dry_run:
        reporter.flush_warnings(console=console)
        print_plan(console, result)
    else:
        print_build(console, result, reporter)


@click.command()
def recipes() -> None:
    """List the recipes in models/."""
    from packager.recipe import list_recipes, recipe_profiles

    for path, purpose in list_recipes():
        profiles = recipe_profiles(path)
        shown = f"\n    profiles (--profile): {', '.join(profiles)}" if profiles else ""
        click.echo(f"{path}\n    {purpose}{shown}")
