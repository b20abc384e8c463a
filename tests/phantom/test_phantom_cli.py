"""``xnatpic phantom``: exit codes, messages, flags."""

from __future__ import annotations

import json

import pytest

from xnatpic.cli.main import main


def test_writes_the_study(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["phantom", str(out), "--snr", "30", "--seed", "2"]) == 0
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert (truth["snr"], truth["seed"]) == (30.0, 2)
    assert (out / "6" / "pdata" / "1" / "2dseq").is_file()
    assert "wrote 8 scans" in capsys.readouterr().err


def test_refuses_a_non_empty_folder_without_force(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["phantom", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "xnatpic phantom: error:" in err and "not empty" in err and "--force" in err
    assert main(["phantom", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "truth" / "truth.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--snr", "0"], "must be a positive number"), (["--snr", "abc"], "is not a number"),
     (["--seed", "-3"], "must be zero or positive"), (["--seed", "1.5"], "is not an integer")],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["phantom", str(tmp_path / "x"), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
