"""The `python -m core` dispatcher: help lists every subcommand; failures end in a message."""
import subprocess
import sys

from core import cli
from tests.conftest import REPO, SAMPLE


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_an_unexpected_exception_is_a_message_and_exit_1(monkeypatch, capsys):
    import core.cli.validate as validate

    def explode(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(validate, "run", explode)
    monkeypatch.delenv("DETLENS_DEBUG", raising=False)
    assert cli.main(["validate", str(SAMPLE / "predictions_strong.csv")]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err

