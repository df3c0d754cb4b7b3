"""`navctl scenarios list | check | show`: output, exit statuses, one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.scenarios import load, names
from navctl.cli import main

REPO = Path(__file__).resolve().parents[1]
GOOD = "version: 1\nname: small\narena: {size_m: [10, 10]}\nrobot: {start: {x: -3, y: 0}}\ngoal: {x: 3, y: 0}\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(["scenarios", *argv])
    except SystemExit as e:  # argparse's own errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def test_list_gives_name_split_and_description(capsys) -> None:
    status, out, err = run(capsys, "list")
    lines = out.splitlines()
    assert status == 0 and not err and len(lines) == len(names())
    for line, name in zip(lines, names()):
        sc = load(name)
        assert line.split()[:2] == [name, sc.split] and line.endswith(sc.description)


def test_list_one_split(capsys) -> None:
    status, out, _ = run(capsys, "list", "--split", "eval")
    assert status == 0 and [line.split()[0] for line in out.splitlines()] == names("eval")
    status, out, err = run(capsys, "list", "--split", "test")
    assert status == 2 and not out and err.count("\n") == 1
    assert err.startswith("navctl scenarios list: error: argument --split: invalid choice: 'test'")


def test_check_passes_good_files(capsys, tmp_path: Path) -> None:
    good = tmp_path / "small.yaml"
    good.write_text(GOOD)
    assert run(capsys, "check", str(good), "ice-strip") == (0, "2 scenario files valid\n", "")


def test_check_gives_one_line_per_bad_file(capsys, tmp_path: Path) -> None:
    good, huge, bad = tmp_path / "good.yaml", tmp_path / "huge.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    huge.write_text(GOOD.replace("[10, 10]", "[100000, 100000]"))
    bad.write_text(GOOD.replace("x: 3", "x: three"))
    status, out, err = run(capsys, "check", str(good), str(huge), str(bad))
    assert status == 2 and not out
    assert err.splitlines() == [
        f"{huge}: arena.size_m[0]: must be <= 50 (the largest arena: the cost of every reset grows with its area), "
        "got 100000",
        f"{bad}: goal.x: must be a number, got string 'three'"]


def test_check_needs_a_file(capsys) -> None:
    status, _, err = run(capsys, "check")
    assert status == 2 and err.startswith("navctl scenarios check: error: the following arguments are required: FILE")


def test_show_prints_a_summary(capsys) -> None:
    status, out, err = run(capsys, "show", "payload-hill")
    assert status == 0 and not err
    lines = out.splitlines()
    sc = load("payload-hill")
    assert lines[0] == f"payload-hill (eval): {sc.description}"
    assert any(line.startswith("  hill at (") for line in lines)
    assert "  event 0 at 5 s ± " in out and "payload 45 kg" in out
    assert "map:" not in out


def test_show_unknown_name_is_one_line_exit_2(capsys) -> None:
    status, out, err = run(capsys, "show", "ice-stirp")
    assert status == 2 and not out and err.count("\n") == 1
    assert err.startswith("navctl scenarios: error: ice-stirp: not a built-in scenario or an existing file "
                          "(did you mean 'ice-strip'?")


def test_no_action_is_an_error(capsys) -> None:
    status, _, err = run(capsys, "show")
    assert status == 2 and "required: NAME|FILE" in err
    status, _, err = run(capsys, "frobnicate")
    assert status == 2 and err.startswith("navctl scenarios: error: argument {list,check,show,generate}: invalid choice")


def _png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path)[:, :, :3]


def _has_color(image: np.ndarray, hex_color: str, tol: float = 0.06) -> bool:
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool(np.any(np.all(np.abs(image - rgb) < tol, axis=-1)))


def test_show_out_draws_the_arena_map(capsys, tmp_path: Path) -> None:
    out_png = tmp_path / "maps" / "slick.png"
    status, out, _ = run(capsys, "show", "slick-zone", "--out", str(out_png))
    assert status == 0 and out.splitlines()[-1] == f"map: {out_png}"
    image = _png(out_png)
    assert image.shape[0] > 400 and image.shape[1] > 400
    assert _has_color(image, "#d62728")  # the dotted zone that triggers the friction drop
    assert _has_color(image, "#2ca02c")  # the goal range, dashed


def test_show_out_draws_one_draw_of_random_boxes(capsys, tmp_path: Path) -> None:
    out_png = tmp_path / "clutter.png"
    status, out, _ = run(capsys, "show", "clutter", "--out", str(out_png))
    assert status == 0 and out.splitlines()[-1] == f"map: {out_png} (random boxes: the draw of seed 0)"
    assert "  obstacles drawn per episode: 7 boxes" in out
    assert _has_color(_png(out_png), "#d9d9d9", tol=0.02)  # the random boxes' light fill


def test_show_out_unwritable_is_one_line_exit_2(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = run(capsys, "show", "flat", "--out", str(blocker / "map.png"))
    assert status == 2 and err.count("\n") == 1 and err.startswith(f"navctl scenarios: error: cannot write {blocker}")


def test_command_line_exit_status_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("version: 1", "version: 1\nversion: 1"))
    proc = subprocess.run([sys.executable, "-m", "navctl", "scenarios", "check", str(bad)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"{bad}: line 2: duplicate key 'version'\n"


def test_generate_writes_split_scenarios_that_check_load_and_run(capsys, tmp_path) -> None:
    import gymnasium as gym

    import envs  # noqa: F401 - registers the env
    from envs.scenarios import generate

    status, out, err = run(capsys, "generate", "--split", "validation", "--first", "2", "--count", "2",
                           "--out", str(tmp_path / "gen"))
    assert status == 0 and not err, err
    files = sorted((tmp_path / "gen").iterdir())
    assert [f.name for f in files] == ["procedural-1000002.yaml", "procedural-1000003.yaml"]
    assert "wrote 2 scenario files" in out
    status, out, err = run(capsys, "check", *map(str, files))
    assert status == 0 and out == "2 scenario files valid\n"
    assert load(str(files[0])).arena == generate(1_000_002).arena and load(str(files[0])).events == generate(1_000_002).events
    env = gym.make("navctl/TerrainNav-v0", scenario=str(files[1]))
    try:
        _, info = env.reset(seed=0)
        assert info["scenario"] == "procedural-1000003" and info["scenario_seed"] is None  # a file, as written
    finally:
        env.close()
    status, _, _ = run(capsys, "generate", "--seed", "5", "--out", str(tmp_path / "gen"))
    assert status == 0 and (tmp_path / "gen" / "procedural-5.yaml").exists()
    assert not [p for p in (tmp_path / "gen").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("argv, message", [
    ([], "give either --split (train, validation, test) or --seed"),
    (["--split", "test", "--seed", "3"], "give either --split"),
    (["--seed", "3", "--first", "1"], "--first goes with --split"),
    (["--split", "test", "--first", "9999", "--count", "2"], "the test split has scenarios 0..9999"),
    (["--split", "test", "--count", "0"], "--count must be >= 1, got 0"),
])
def test_generate_bad_flags_are_one_line_errors(capsys, tmp_path, argv, message) -> None:
    status, out, err = run(capsys, "generate", *argv, "--out", str(tmp_path / "gen"))
    assert status == 2 and not out and err.startswith("navctl scenarios: error: ") and message in err
    assert not (tmp_path / "gen").exists()


def test_show_a_generated_scenario_by_name(capsys) -> None:
    status, out, err = run(capsys, "show", "procedural-2000000")
    assert status == 0 and out.startswith("procedural-2000000 (no split): Generated from seed 2000000")
    status, out, err = run(capsys, "show", "procedural-test")
    assert status == 2 and "show one of them, e.g. procedural-2000000" in err
