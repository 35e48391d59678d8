"""Labels say what they show (issue 11): the IoU every number is at, and why two counts differ."""
from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from core.dataset import load_coco
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.conftest import REAL_TRASH, REPO, chart_figures, need, panel_figures
from tests.test_app import open_app, texts
from ui import state as S

# Numbers COCO computes at IoU 0.5 whatever the slider says: their labels are right to say 0.5
FIXED_AT_05 = {"mAP@0.5 (competition)", "mAP@0.5", "AP@0.5"}
SAYS_05 = re.compile(r"(@|IoU |AP)0?\.5(?!\d)|AP50(?!:)")
IOU_PAGES = ["pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/3_Class_errors.py",
             "pages/7_Compare.py", "pages/11_Slices.py", "pages/12_Calibration.py"]


def _figure_labels(spec: dict) -> list[str]:
    layout = spec.get("layout", {})
    labels = [t.get("name") for t in spec.get("data", [])]
    for part in [layout] + [v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]:
        title = part.get("title") if isinstance(part, dict) else None
        labels.append(title.get("text") if isinstance(title, dict) else title)
    labels += [a.get("text") for a in layout.get("annotations", [])]
    return [str(x) for x in labels if x]


def _values(array) -> np.ndarray:
    """A plotly array as the figure's json holds it: a list, or base64 with its dtype."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def page_labels(at) -> list[str]:
    """Every label of a run but the charts': text lines, metric labels, table columns and rows."""
    labels = [line for kind in ("markdown", "caption", "error", "warning", "info", "title", "subheader", "header")
              for e in getattr(at, kind) for line in str(e.value).splitlines()]
    labels += [m.label for m in at.metric]
    for frame in list(at.dataframe) + list(at.table):
        value = frame.value
        value = getattr(value, "data", value)  # a Styler's frame
        labels += [str(c) for c in value.columns] + [str(i) for i in value.index]
    labels += [o for box in at.selectbox for o in box.options]
    return labels


def chart_labels(at) -> list[str]:
    """Titles, legends and axes of every chart and image panel (no COCO stat is charted: none may
    say 0.5)."""
    figures = chart_figures(at) + panel_figures(at)
    return [label for figure in figures for label in _figure_labels(figure)]


def test_no_label_says_05_at_iou_075_on_the_real_fold():
    need(REAL_TRASH / "fold3_gt.json")
    state = {S.DATA_DIR: str(REAL_TRASH), S.GT_CHOICE: "fold3_gt.json", S.IOU_THR: 0.75}
    wrong = {}
    for page in IOU_PAGES:
        at = open_app(page, **state)
        assert not at.exception, (page, [e.value for e in at.exception])
        bad = [label for label in page_labels(at) if SAYS_05.search(label) and label not in FIXED_AT_05]
        bad += [label for label in chart_labels(at) if SAYS_05.search(label)]
        if bad:
            wrong[page] = bad
    assert wrong == {}


def test_overview_delta_compares_like_with_like():
    """At IoU 0.75 the score-threshold metric and its delta are both AP@0.75 (pycocotools' stats[2])."""
    gt_path = need(REAL_TRASH / "fold3_gt.json")
    dataset = load_coco(gt_path)
    predictions = load_predictions(REAL_TRASH / "fold3_deta_swinL.csv", dataset=dataset)
    ev = evaluate(dataset, predictions, iou_thr=0.75)
    view = ev.at(0.3)
    at = open_app("pages/1_Overview.py", **{S.DATA_DIR: str(REAL_TRASH), S.GT_CHOICE: "fold3_gt.json",
                                             S.IOU_THR: 0.75, S.SCORE_THR: 0.3})
    shown = next(m for m in at.metric if m.label == "mAP@0.75 at score ≥ 0.30")
    assert shown.value == f"{view.map50:.4f}"
    # with every box kept, AP at the matching IoU is COCO's AP@0.75
    assert float(shown.delta) == pytest.approx(view.map50 - ev.stats["map75"], abs=1e-4)
    assert "every box, whatever the score threshold" in texts(at)  # the TIDE table says why it differs


def test_class_errors_says_why_missed_and_background_bar_differ():
    need(REAL_TRASH / "fold3_gt.json")
    at = open_app("pages/3_Class_errors.py", **{S.DATA_DIR: str(REAL_TRASH), S.GT_CHOICE: "fold3_gt.json"})
    radio = at.radio(key="_errors_kind")
    missed = int(re.search(r"\(([\d,]+)\)", radio.format_func("missed")).group(1).replace(",", ""))
    chart = next(f for f in chart_figures(at) if "predicted as" in str(f["layout"].get("title")))
    bars = chart["data"][0]
    background = int(_values(bars["y"])[list(bars["x"]).index("background")])
    caption = next(c.value for c in at.caption if "background bar" in c.value)
    assert f"Missed GT ({missed:,})" in caption and f"background bar ({background:,})" in caption


def test_landing_page_links_every_page():
    """Issue 11: the Pages list stopped at Export (no Live inference, Compare, Ensemble, ...)."""
    at = open_app()
    assert not at.exception
    linked = {link.proto.page for link in at.get("page_link")}
    files = [f for f in sorted(REPO.glob("pages/*.py")) if f.name != "0_Home.py"]  # itself: no link
    assert len(files) >= 12
    assert linked == {f.stem.split("_", 1)[1] for f in files}


@pytest.mark.parametrize("spread", [(3.0, 900.0), (0.4, 2.5)])
def test_dataset_log_axes_label_no_minor_ticks(spread):
    """Issue 11: plotly labelled the log axes' minor ticks ("5 2 5 2"); now 1, 10, 100 (1-2-5 if narrow)."""
    from core.charts import per_class_box_figure

    values = np.geomspace(*spread, 40)
    frame = pd.DataFrame({"category_id": np.repeat([1, 2], 20), "side": values})
    fig = per_class_box_figure(frame, "side", names={1: "a", 2: "b"}, colors={}, title="t", y_title="y", log_y=True)
    ticks = np.asarray(fig.layout.yaxis.tickvals, dtype=np.float64)
    mantissa = ticks / 10.0 ** np.floor(np.log10(ticks) + 1e-9)
    assert len(ticks) >= 3 and set(np.round(mantissa, 6)) <= {1.0, 2.0, 5.0}
    shown = ticks[(ticks >= values.min()) & (ticks <= values.max())]
    assert len(shown) >= 2, "at least two labelled ticks inside the data"
    if np.log10(spread[1] / spread[0]) >= 2:
        assert set(np.round(mantissa, 6)) == {1.0}, "over two decades: powers of ten only"


@pytest.mark.parametrize("page", ["pages/7_Compare.py", "pages/8_Ensemble.py"])
def test_outside_image_warning_shown_once(page):
    """Issue 11: the active set's warnings came twice (sidebar loading, then the set chooser)."""
    need(REAL_TRASH / "fold3_gt.json")
    at = open_app(page, **{S.DATA_DIR: str(REAL_TRASH), S.GT_CHOICE: "fold3_gt.json"})
    assert not at.exception
    headers = [e.label for e in at.expander if "warning(s)" in e.label]
    assert headers, "the real fold's boxes reach outside their images: a warning is expected"
    assert len(headers) == len(set(headers)), headers


def test_the_first_evaluation_says_it_builds_the_kernels(monkeypatch):
    """Issue 11: ~13 s behind "Matching predictions..." on a fresh checkout; the spinner now says
    the kernels are built once, exactly when core.kernel_build has no build to load."""
    import functools

    from core import kernel_build
    from ui.loaders import kernels_to_build

    monkeypatch.delenv("DETLENS_KERNELS", raising=False)
    fresh = functools.lru_cache(maxsize=1)(lambda: None)  # nothing loaded in this process yet
    monkeypatch.setattr(kernel_build, "kernels", fresh)
    monkeypatch.setattr(kernel_build, "module_name", lambda: "_detlens_kernels_never_built")
    assert kernels_to_build()                      # a fresh checkout: the build comes first
    monkeypatch.setenv("DETLENS_KERNELS", "jit")
    assert not kernels_to_build()                  # the JIT is forced: nothing is built
    monkeypatch.delenv("DETLENS_KERNELS")
    fresh()
    assert not kernels_to_build()                  # loaded in this process: no build again
