"""`edgepack build` and `edgepack recipes`."""

from __future__ import annotations

import click


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
    help="Sign the published package with this ed25519 private key (edgepack keygen).",
)
def build(
    recipe: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    cache_dir: str | None,
    quiet: bool,
    sign_key: str | None,
) -> None:
    """Distill, export, quantize, evaluate, bench and package RECIPE [default: models/digits.yaml]."""
    from packager import pipeline
    from packager.cli.render import make_console, print_build, print_plan
    from packager.progress import Reporter
    from packager.recipe import load_recipe

    r = load_recipe(recipe, overrides)
    result = pipeline.build(
        r,
        cache_dir=cache_dir,
        dry_run=dry_run,
        reporter=Reporter(verbose=not quiet),
        sign_key=sign_key,
    )
    console = make_console()
    if dry_run:
        print_plan(console, result)
    else:
        print_build(console, result)


@click.command()
def recipes() -> None:
    """List the recipes in models/."""
    from packager.recipe import list_recipes

    for path, purpose in list_recipes():
        click.echo(f"{path}\n    {purpose}")
