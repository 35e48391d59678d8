"""CLI output files: checked before the work, never left truncated, written even when stdout closes."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import core.submission
from core.cli import main
from core.output_files import OutputError, atomic_output, check_writable
from core.submission import read_submission
from tests.conftest import REPO

SAMPLE = REPO / "sample_data"
STRONG, WEAK = SAMPLE / "predictions_strong.csv", SAMPLE / "predictions_weak.csv"


class TestCheckWritable:
    def test_folder_as_file(self, tmp_path):
        with pytest.raises(OutputError, match=r"--out .* is a folder; give a file path"):
            check_writable(tmp_path, "--out")

    def test_folder_under_a_file_cannot_be_made(self, tmp_path):
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        with pytest.raises(OutputError, match="cannot create the folder"):
            check_writable(blocker / "sub" / "out.csv", "--out")

    def test_missing_folder_is_made(self, tmp_path):
        assert check_writable(tmp_path / "new" / "out.csv", "--out") == tmp_path / "new" / "out.csv"
        assert (tmp_path / "new").is_dir()


class TestAtomicOutput:
    def test_failure_leaves_the_previous_file_and_no_temporary(self, tmp_path):
        out = tmp_path / "out.csv"
        out.write_text("previous\n")
        with pytest.raises(OSError):
            with atomic_output(out) as handle:
                handle.write("half of the new")
                raise OSError(errno.ENOSPC, "No space left on device")
        assert out.read_text() == "previous\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]

    def test_success_replaces_with_the_usual_mode(self, tmp_path):
        out = tmp_path / "out.csv"
        with atomic_output(out) as handle:
            handle.write("new\n")
        assert out.read_text() == "new\n"
        mask = os.umask(0)
        os.umask(mask)
        assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_infer_checks_out_before_predicting(tmp_path, monkeypatch, capsys):
    """An unwritable --out fails at once; it used to be found only after the whole run."""
    import core.inference

    def must_not_run(*args, **kwargs):
        raise AssertionError("inference ran although --out cannot be written")

    monkeypatch.setattr(core.inference, "load_detector", must_not_run)
    monkeypatch.setattr(core.inference, "predict_images", must_not_run)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(["infer", "--checkpoint", str(SAMPLE / "demo_model.pt"), "--data", str(SAMPLE),
                 "--split", "train", "--limit", "1", "--out", str(blocker / "pred.csv")])
    assert code == 1
    assert "--out" in capsys.readouterr().out


def _disk_fills_halfway(monkeypatch):
    """Make the CSV writer write half its rows, then fail as a full disk does."""
    write_rows = core.submission._write_rows

    def half_then_enospc(handle, strings, image_keys):
        write_rows(handle, strings[: len(strings) // 2], image_keys[: len(strings) // 2])
        handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(core.submission, "_write_rows", half_then_enospc)


def test_ensemble_on_a_full_disk_leaves_no_truncated_csv(tmp_path, monkeypatch, capsys):
    _disk_fills_halfway(monkeypatch)
    out = tmp_path / "ens.csv"
    code = main(["ensemble", str(STRONG), str(WEAK), "--method", "nms", "--out", str(out)])
    assert code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither a truncated ens.csv nor a temporary


def test_infer_on_a_full_disk_keeps_the_previous_csv(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    _disk_fills_halfway(monkeypatch)
    out = tmp_path / "pred.csv"
    out.write_text("PredictionString,image_id\n")
    code = main(["infer", "--checkpoint", str(SAMPLE / "demo_model.pt"), "--data", str(SAMPLE),
                 "--split", "train", "--limit", "2", "--out", str(out)])
    assert code == 1
    assert "nothing was written there" in capsys.readouterr().out
    assert out.read_text() == "PredictionString,image_id\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_closed_stdout_still_writes_the_file(tmp_path):
    """`... | head -1`: the reader goes away after one line; the command ends quietly, file whole."""
    reference, piped = tmp_path / "reference.csv", tmp_path / "piped.csv"
    args = [sys.executable, "-m", "core", "ensemble", str(STRONG), str(WEAK), "--method", "wbf",
            "--gt", str(SAMPLE / "train.json")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # every line hits the pipe at once, as in a terminal
    subprocess.run([*args, "--out", str(reference)], cwd=REPO, env=env, check=True, capture_output=True)
    process = subprocess.Popen([*args, "--out", str(piped)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_line = process.stdout.readline()
    process.stdout.close()  # what `head -1` does after its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert first_line
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert piped.read_bytes() == reference.read_bytes()
    assert len(read_submission(piped)) > 0


def test_evaluate_checks_json_before_evaluating(tmp_path, monkeypatch, capsys):
    import core.evaluation

    def must_not_run(*args, **kwargs):
        raise AssertionError("evaluated although --json cannot be written")

    monkeypatch.setattr(core.evaluation, "evaluate", must_not_run)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(["evaluate", str(SAMPLE / "train.json"), str(STRONG), "--json", str(blocker / "out.json")])
    assert code == 1
    assert "--json" in capsys.readouterr().out
