"""Many processes for every modality (packager.distill.ddp): a 2-process gloo run of a text and
an image student ends at the loss one process reaches with the same global batch; the
teacher's cached outputs are computed once across the ranks; a rank killed mid-run is
restarted by torchrun and resumes from the checkpoint, ending where an uninterrupted run ends.

Tolerance: the students take the same steps up to float summation order (gradients averaged
over ranks instead of over one batch; an image student's batch-norm statistics summed over the
ranks, packager.nets.batchnorm): 1e-4 relative on every epoch's training loss. A text student
needs no dropout for it (each process draws its own masks): the test teacher has none.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter
from packager.recipe import build_recipe

pytestmark = pytest.mark.slow
SAME_STEPS = 1e-4


def _until_distill(recipe, cache):
    steps = build_plan(recipe)
    last = [s.name for s in steps].index("distill")
    return run(steps[: last + 1], cache_dir=cache, reporter=SilentReporter())


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.fixture(scope="module")
def text_setup(tmp_path_factory):
    from tiny_models import tiny_bert_folder, write_tiny_texts

    root = tmp_path_factory.mktemp("ddp-text")
    teacher = tiny_bert_folder(root / "enc", task="feature-extraction", seed=1, dropout=0.0)
    return root, teacher, write_tiny_texts(root / "topics.jsonl", n=300)


def _text(text_setup, nproc: int, cache):
    from tiny_models import tiny_text_recipe_dict

    _, teacher, texts = text_setup
    distill = {
        "losses": {"embedding_cosine": 1.0, "embedding_mse": 1.0},
        "epochs": 2,
        "batch_size": 16,
        "nproc": nproc,
    }
    recipe = tiny_text_recipe_dict(
        str(texts),
        str(teacher),
        task="feature-extraction",
        distill=distill,
        quantize={"metric": "cosine"},
    )
    return _until_distill(build_recipe(recipe), cache)


@pytest.fixture(scope="module")
def text_runs(text_setup, tmp_path_factory):
    """The same text student distilled on 1 and on 2 processes, each in a cache of its own."""
    return {n: _text(text_setup, n, tmp_path_factory.mktemp(f"text-{n}")) for n in (1, 2)}


def test_two_processes_train_a_text_student_to_the_loss_of_one(text_runs):
    one, two = (text_runs[n].artifact("distill").meta for n in (1, 2))
    assert two["compute"]["processes"] == 2 and two["compute"]["unit"] == "texts/s"
    for a, b in zip(one["curve"][1:], two["curve"][1:], strict=True):
        assert _close(a["train_loss"], b["train_loss"], SAME_STEPS), (a, b)
        assert _close(a["val"], b["val"], SAME_STEPS), (a, b)
    assert one["curve"][-1]["train_loss"] < 0.5 * one["curve"][1]["train_loss"]


def test_the_teacher_pass_runs_once_across_the_ranks(text_runs):
    one, two = (text_runs[n].artifact("teacher_outputs") for n in (1, 2))
    shares = two.meta["rows_by_rank"]
    assert len(shares) == 2 and sum(shares) == two.meta["texts"] and min(shares) > 0
    assert one.meta["rows_by_rank"] == [one.meta["texts"]]
    # every text by one rank, in the batch one process uses: the same cached step, byte for byte
    assert np.array_equal(np.load(one.file()), np.load(two.file())) and one.id == two.id


def _image(images, nproc: int, cache):
    from tiny_images import image_recipe_dict

    distill = {"epochs": 3, "nproc": nproc, "augment": {"enabled": True}}
    return _until_distill(build_recipe(image_recipe_dict(str(images), distill=distill)), cache)


def test_two_processes_train_an_image_student_to_the_loss_of_one(tmp_path):
    from tiny_images import write_image_folder

    images = write_image_folder(tmp_path / "photos", 60)
    one = _image(images, 1, tmp_path / "one").artifact("distill").meta
    two = _image(images, 2, tmp_path / "two").artifact("distill").meta
    assert two["compute"]["processes"] == 2 and two["compute"]["unit"] == "images/s"
    for a, b in zip(one["curve"][1:], two["curve"][1:], strict=True):
        assert _close(a["train_loss"], b["train_loss"], SAME_STEPS), (a, b)
        assert a["val_agreement"] == b["val_agreement"]


def test_the_writers_progress_reaches_the_builds_progress_line(capsys):
    """A torchrun rank's progress (its loss and texts/s) is printed as marked lines and
    forwarded into the build's reporter: the same fields as one process's progress line."""
    from packager.distill.ddp import LineReporter, _forward

    writer, other = LineReporter(live=True), LineReporter(live=False)
    for rep in (writer, other):
        with rep.track("distill", 4) as advance:
            advance(1, loss=0.5, **{"texts/s": 812.5})
            advance(1, loss=0.25, **{"texts/s": 790.0})
    lines = capsys.readouterr().out.splitlines(keepends=True)
    got = []

    class Recording:
        def track(self, description, total):
            from contextlib import contextmanager

            @contextmanager
            def bar():
                yield lambda n=1, **fields: got.append((description, total, n, fields))

            return bar()

        def note(self, message):
            got.append(message)

    _forward(iter(["torchrun's own line\n", *lines]), Recording())
    assert got == [
        ("distill", 4, 1, {"loss": 0.5, "texts/s": 812.5}),
        ("distill", 4, 1, {"loss": 0.25, "texts/s": 790.0}),
    ]  # the writer's only: the other rank is silent


def _ddp_workers() -> list:
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "packager.distill.ddp" in " ".join(p.cmdline()):
                found.append((p, p.environ().get("LOCAL_RANK")))
        except psutil.Error:
            continue
    return found


def _kill_rank_1_after_a_checkpoint(cache, done: threading.Event, killed: list) -> None:
    """Once the first checkpoint is written: freeze both ranks, kill rank 1, let rank 0 go on
    (to find its peer gone: the run fails, and is started again)."""
    import signal

    while not done.is_set():
        if list(cache.glob("distill/.work-*/checkpoint.pt")):
            workers = _ddp_workers()
            for p, _ in workers:
                p.send_signal(signal.SIGSTOP)
            for p, rank in workers:
                if rank == "1":
                    p.kill()
                    killed.append(p.pid)
            for p, _ in workers:
                if p.is_running():
                    p.send_signal(signal.SIGCONT)
            return
        time.sleep(0.01)


def _digits(nproc: int, cache, **distill):
    from tiny_models import tiny_recipe

    d = {"nproc": nproc, "epochs": 25, "patience": 25, "checkpoint_steps": 2, **distill}
    steps = [
        s for s in build_plan(tiny_recipe(distill=d)) if s.name in ("data", "teacher", "distill")
    ]
    return run(steps, cache_dir=cache, reporter=SilentReporter()).artifact("distill")


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """The array student distilled on 1 and on 2 processes, uninterrupted."""
    return {n: _digits(n, tmp_path_factory.mktemp(f"digits-{n}")) for n in (1, 2)}


def test_a_rank_killed_mid_run_resumes_from_the_checkpoint_and_ends_where_it_would(
    tmp_path, digits_runs
):
    done, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_rank_1_after_a_checkpoint, args=(tmp_path, done, killed))
    killer.start()
    try:
        resumed = _digits(2, tmp_path)
    finally:
        done.set()
        killer.join()
    assert killed, "rank 1 finished before it could be killed"
    assert resumed.meta["compute"]["resumed_at_steps"]  # started again (distill.restarts 1)
    whole = digits_runs[2]
    assert resumed.id == whole.id  # the same student, byte for byte
    assert resumed.meta["curve"] == whole.meta["curve"]
    assert not list(tmp_path.glob("distill/.work-*"))  # checkpoints gone once committed


def test_two_processes_train_an_array_student_to_the_loss_of_one(digits_runs):
    one, two = digits_runs[1].meta, digits_runs[2].meta
    assert two["compute"]["processes"] == 2 and two["compute"]["unit"] == "examples/s"
    for a, b in zip(one["curve"], two["curve"], strict=True):
        assert _close(a["train_loss"], b["train_loss"], SAME_STEPS), (a, b)
