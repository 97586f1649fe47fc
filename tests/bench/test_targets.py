"""Spec for packager/bench/targets.py and `edgepack targets`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from packager.bench import BenchError
from packager.bench.targets import ENV_VAR, check_target_names, load_targets
from packager.cli import cli

REQUIRED = {"host", "rpi4", "rpi5", "jetson-orin-nano-cpu", "android-arm64-mid", "x86-atom"}


def test_builtin_profiles_validate_and_every_figure_names_its_source() -> None:
    profiles = load_targets()
    assert set(profiles) >= REQUIRED
    assert profiles["rpi4"].cpu == "Cortex-A72" and profiles["rpi4"].cores == 4
    assert profiles["rpi4"].memory_mb == 4096
    assert profiles["rpi5"].cpu == "Cortex-A76"
    assert profiles["jetson-orin-nano-cpu"].cpu == "Cortex-A78AE"
    for name in REQUIRED - {"host"}:
        p = profiles[name]
        assert p.arch and p.cores and p.memory_mb and p.isa and p.execution_provider
        for figure in (p.peak_gflops, p.bandwidth_gbs):
            assert figure is not None and figure.value > 0 and len(figure.source) > 30
            if figure.derived:  # a derived figure shows its arithmetic
                assert " x " in figure.source


def test_derived_peaks_equal_cores_times_clock_times_flops_per_cycle() -> None:
    p = load_targets()
    assert p["rpi4"].peak_gflops.value == pytest.approx(4 * 1.5 * 8)
    assert p["rpi5"].peak_gflops.value == pytest.approx(4 * 2.4 * 16)
    assert p["rpi4"].bandwidth_gbs.value == pytest.approx(3.2 * 4)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


MY_BOARD = """name: my-board
description: a board of my own
arch: aarch64
cpu: Cortex-A55
cores: 4
memory_mb: 1024
peak_gflops: {value: 30, derived: true, source: "4 x 1.8 GHz x 4 FLOP/cycle, my notes"}
bandwidth_gbs: {value: 6.4, derived: true, source: "LPDDR4-3200 x 16-bit, my notes"}
"""


def test_a_users_folder_adds_profiles_by_option_and_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "mine", "my-board", MY_BOARD)
    assert "my-board" in load_targets(tmp_path / "mine")
    assert "my-board" not in load_targets()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine"))
    assert load_targets()["my-board"].cores == 4


def test_a_users_profile_with_a_builtin_name_replaces_it(tmp_path: Path) -> None:
    _write(tmp_path, "rpi4", MY_BOARD.replace("my-board", "rpi4"))
    assert load_targets(tmp_path)["rpi4"].cpu == "Cortex-A55"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MY_BOARD.replace("cores: 4\n", ""), "needs cores"),
        (MY_BOARD + "colour: red\n", "colour"),
        (MY_BOARD.replace("arch: aarch64", "arch: sparc"), "arch"),
        ("- just a list\n", "mapping"),
    ],
)
def test_a_bad_profile_is_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "bad", text)
    with pytest.raises(BenchError) as exc:
        load_targets(tmp_path)
    assert str(path) in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_target_names_are_profiles_or_ssh_urls() -> None:
    check_target_names(["host", "rpi4", "ssh://pi@raspberrypi.local", "ssh://10.0.0.2:2222"])
    with pytest.raises(BenchError, match=r"unknown target 'rpi9'.*rpi4"):
        check_target_names(["rpi9"])
    with pytest.raises(BenchError, match="ssh://user@host"):
        check_target_names(["ssh://pi@host/some/path"])


def test_targets_command_lists_profiles_and_shows_sources() -> None:
    listing = CliRunner().invoke(cli, ["targets"])
    assert listing.exit_code == 0, listing.output
    for name in REQUIRED:
        assert name in listing.output
    one = CliRunner().invoke(cli, ["targets", "rpi5"])
    assert one.exit_code == 0 and "Raspberry Pi 5 product brief" in one.output
    bad = CliRunner().invoke(cli, ["targets", "nope"])
    assert bad.exit_code != 0 and "unknown target 'nope'" in bad.output
