"""`edgepack auto`: the smallest, fastest package that meets a device's budget, found by search."""

from __future__ import annotations

import click

from packager.cli.options import Finite


@click.command()
@click.argument("recipe")
@click.option(
    "--target",
    required=True,
    metavar="NAME|ssh://USER@HOST",
    help="A target profile (edgepack targets): latency estimated by the latency model; host or "
    "ssh://...: measured.",
)
@click.option("--latency-ms", type=Finite(min=0, min_open=True), required=True,
              help="Latency budget of one inference on the target (batch 1).")  # fmt: skip
@click.option("--size-mb", type=Finite(min=0, min_open=True),
              help="Budget on the model file's size.")  # fmt: skip
@click.option("--memory-mb", type=Finite(min=0, min_open=True),
              help="Budget on the model's weights + peak activations (from its graph).")  # fmt: skip
@click.option("--max-drop", type=Finite(min=0, max=1),
              help="Most the shipped model's metric may lose to the teacher's (test split).")  # fmt: skip
@click.option(
    "--min-metric", type=Finite(), help="Floor on the shipped model's metric (test split)."
)
@click.option("--budget-minutes", type=Finite(min=0, min_open=True),
              help="Stop starting trials after this long; the best so far is built.")  # fmt: skip
@click.option("--seed", type=int, help="Seeds the sampling of a large space and the tie-breaks "
              "[default: the recipe's auto.seed].")  # fmt: skip
@click.option(
    "--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
    help="Override a recipe field (auto.* included) before searching.",
)  # fmt: skip
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Stage cache [default: .edgepack/cache]."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the final table and errors.")
def auto(
    recipe: str,
    target: str,
    latency_ms: float,
    size_mb: float | None,
    memory_mb: float | None,
    max_drop: float | None,
    min_metric: float | None,
    budget_minutes: float | None,
    seed: int | None,
    overrides: tuple[str, ...],
    cache_dir: str | None,
    quiet: bool,
) -> None:
    """Search RECIPE's students x quantization modes x threads for the best package that runs
    within --latency-ms on --target (and the other budgets); build it. Every trial is a cached
    recipe variant: a rerun, or a wider search, reuses what was done."""
    from packager.cli.render import make_console, print_auto
    from packager.errors import RecipeError
    from packager.progress import Reporter
    from packager.search.auto import auto as run_auto
    from packager.search.constraints import Constraints

    if max_drop is not None and min_metric is not None:
        raise RecipeError("--max-drop and --min-metric: give one of them, not both")
    constraints = Constraints(latency_ms, size_mb, memory_mb, max_drop, min_metric, budget_minutes)
    result = run_auto(
        recipe, target, constraints, seed=seed, overrides=overrides, cache_dir=cache_dir,
        reporter=Reporter(verbose=not quiet),
    )  # fmt: skip
    print_auto(make_console(), result)
