import subprocess
import sys

import pytest

from gemmaflow.cli import EXIT_USER_ERROR, build_parser, main


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # argparse's own table of subcommands
    assert "curate" in subcommands
    for name in subcommands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "examples:" in capsys.readouterr().out


def test_glob_matching_nothing_exits_non_zero_naming_it(tmp_path, capsys):
    code = main(["curate", "--input", str(tmp_path / "none-*.jsonl"), "--output", str(tmp_path / "o")])
    assert code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "none-*.jsonl" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_config_key_is_named(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("language:\n  min_scor: 0.5\n")
    code = main(["curate", "--output", str(tmp_path / "o"), "--config", str(cfg), "--dry-run"])
    assert code == EXIT_USER_ERROR
    assert "language.min_scor" in capsys.readouterr().err


def test_dry_run_prints_stage_graph_and_config(tmp_path, capsys):
    assert main(["curate", "--output", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("read -> normalise -> domain -> language -> heuristics -> classify -> exact_dedupe -> near_dedupe -> pii"
            " -> write") in out
    assert "min_score: 0.65" in out
    assert not (tmp_path / "o").exists()


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "gemmaflow.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "curate" in result.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"read: {text_field: \xff\xfe}\n", "not UTF-8"),
        (b"read: [unclosed\n  x: 1\n", "not valid YAML"),
        (None, "folder"),
    ],
)
@pytest.mark.parametrize("command", ["curate", "train"])
def test_bad_config_files_are_one_line_and_exit_2(tmp_path, capsys, content, expected, command):
    config = tmp_path / "config.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    args = {"curate": ["curate", "--output", str(tmp_path / "o"), "--config", str(config), "--dry-run"],
            "train": ["train", "--shards", str(tmp_path), "--config", str(config), "--out", str(tmp_path / "t")]}
    assert main(args[command]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


@pytest.mark.parametrize("separator", [[], ["--"]])
def test_beam_options_after_a_separator_still_reach_beam(tmp_path, capsys, separator):
    # A `--` before Beam's options used to make Beam ignore them: the run went local, silently.
    assert main(["curate", "--output", str(tmp_path / "out"), "--dry-run", *separator, "--runner", "dask"]) == 0
    assert "built for DaskRunner" in capsys.readouterr().out
