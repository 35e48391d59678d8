"""Forward ensemble selection, the HTML report and the `catalog` / `report` commands (both stores)."""
from __future__ import annotations

import json
import re

import pytest

from core.catalog.selection import forward_selection
from core.cli import main
from core.dataset import load_coco
from core.ensemble import EnsembleConfig, ensemble_predictions
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.catalog_support import store_url  # noqa: F401 - fixture
from tests.conftest import SAMPLE
from tests.test_catalog_store import pycocotools_map50

NAMES = ("strong", "weak", "trained_fcos")


def test_forward_selection_path_is_greedy_and_scored_like_pycocotools(tmp_path):
    dataset = load_coco(SAMPLE / "train.json")
    candidates = {n: load_predictions(SAMPLE / f"predictions_{n}.csv", dataset=dataset) for n in NAMES}
    config = EnsembleConfig("wbf", conf_type="max")
    result = forward_selection(candidates, dataset, [config], image_root=SAMPLE)
    singles = {n: pycocotools_map50(SAMPLE / "train.json", SAMPLE / f"predictions_{n}.csv") for n in NAMES}
    assert result.members[0] == max(singles, key=singles.get)
    assert result.path["map50"].iloc[0] == pytest.approx(singles[result.members[0]], abs=1e-9)
    assert result.path["map50"].is_monotonic_increasing and (result.path["gain"].iloc[1:] > 0).all()

    def ensemble_map(members):
        ens = ensemble_predictions([candidates[m] for m in members], config, dataset=dataset, image_root=SAMPLE)
        path = tmp_path / f"{'_'.join(members)}.csv"
        from core.submission import write_submission
        write_submission(ens.predictions, path)
        return pycocotools_map50(SAMPLE / "train.json", path)

    for step in range(1, len(result.path)):
        members = result.members[:step + 1]
        assert result.path["map50"].iloc[step] == pytest.approx(ensemble_map(members), abs=1e-6)
        for other in set(NAMES) - set(members):  # the added one was the best of its step
            assert ensemble_map(result.members[:step] + [other]) <= result.path["map50"].iloc[step] + 1e-9
    if len(result.members) < len(NAMES):  # it stopped because nothing helped
        for other in set(NAMES) - set(result.members):
            assert ensemble_map(result.members + [other]) <= result.map50 + 1e-9


def test_report_is_self_contained(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(SAMPLE / "train.json"), str(SAMPLE / "predictions_weak.csv"), "--out", str(out)]) == 0
    text = out.read_text()
    expected = pycocotools_map50(SAMPLE / "train.json", SAMPLE / "predictions_weak.csv")
    assert f"{expected:.4f}" in text
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", text)  # nothing fetched from a network
    assert "Plotly.newPlot" in text and text.count("<h2>") == 4
    for section in ("Overview", "Per class", "Error breakdown", "Threshold curves"):
        assert f"<h2>{section}</h2>" in text
    assert f"mAP@0.5 {expected:.4f}" in capsys.readouterr().out


def test_report_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01 binary")
    assert main(["report", str(SAMPLE / "train.json"), str(bad), "--out", str(tmp_path / "r.html")]) == 1
    assert not (tmp_path / "r.html").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", str(SAMPLE / "train.json"), str(SAMPLE / "predictions_weak.csv"),
                 "--out", str(blocker / "r.html")]) == 1
    assert "--out" in capsys.readouterr().out


def test_catalog_commands(store_url, capsys):
    db = ["--db", store_url]
    strong, weak = SAMPLE / "predictions_strong.csv", SAMPLE / "predictions_weak.csv"
    assert main(["catalog", "add", str(strong), "--gt", str(SAMPLE / "train.json"), "--name", "strong one",
                 "--lb", "0.74", "--model", "fcos", *db]) == 0
    assert "registered" in capsys.readouterr().out
    assert main(["catalog", "add", str(strong), *db]) == 0
    assert "already in the catalog" in capsys.readouterr().out
    assert main(["catalog", "add", str(weak), "--gt", str(SAMPLE / "train.json"), *db]) == 0
    assert main(["catalog", "set", "2", "--notes", "baseline", "--private", "0.41", *db]) == 0
    capsys.readouterr()
    assert main(["catalog", "list", "--json", *db]) == 0
    listing = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in listing["submissions"]}
    assert listing["gt"] == "train.json" and len(rows) == 2
    assert (rows[1]["name"], rows[1]["lb_score"], rows[1]["model"]) == ("strong one", 0.74, "fcos")
    assert (rows[2]["notes"], rows[2]["private_score"]) == ("baseline", 0.41)
    assert rows[1]["val_map50"] == pytest.approx(pycocotools_map50(SAMPLE / "train.json", strong), abs=1e-9)
    assert rows[2]["val_map50"] == pytest.approx(pycocotools_map50(SAMPLE / "train.json", weak), abs=1e-9)
    assert main(["catalog", "show", "1", *db]) == 0
    shown = capsys.readouterr().out
    assert "strong one" in shown and "result: train.json" in shown
    assert main(["catalog", "list", *db]) == 0
    assert "strong one" in capsys.readouterr().out
    if "@" in store_url:
        assert "password" not in shown


def test_catalog_command_errors(tmp_path, capsys):
    db = ["--db", str(tmp_path / "c.sqlite")]
    assert main(["catalog", "add", str(SAMPLE / "predictions_weak.csv"), "--lb", "abc", *db]) == 1
    assert "lb_score must be a number" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,submission\n1,2,3\n")
    assert main(["catalog", "add", str(bad), *db]) == 1
    assert "not registered" in capsys.readouterr().err
    assert main(["catalog", "show", "7", *db]) == 1
    assert "no submission #7" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 1000)
    assert main(["catalog", "list", "--db", str(corrupt)]) == 1
    assert "not a SQLite database" in capsys.readouterr().err
    assert main(["catalog", "list", "--db", "postgresql://u:topsecret@127.0.0.1:1/db"]) == 1
    err = capsys.readouterr().err
    assert "topsecret" not in err and "u:***@" in err
