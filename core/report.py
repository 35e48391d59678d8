"""One self-contained HTML report of an evaluation, for a teammate who does not run DetLens.

Overview (the 12 COCO stats, precision/recall/F1 at the threshold), per-class table, error
breakdown (TIDE dAP and counts) and the threshold curves. plotly.js is embedded once, so the
file opens offline.
"""
from __future__ import annotations

import datetime as dt
import html
import math

import numpy as np
import pandas as pd
import plotly.io as pio

from core.charts import best_f1_threshold, threshold_curves_figure, tide_figure
from core.outcomes import PREDICTION_ERRORS
from core.metrics import STAT_NAMES

_STAT_LABELS = {
    "map": "mAP@[.5:.95]", "map50": "mAP@0.5", "map75": "mAP@0.75", "map_small": "mAP small",
    "map_medium": "mAP medium", "map_large": "mAP large", "ar1": "AR@1", "ar10": "AR@10", "ar100": "AR@100",
    "ar_small": "AR small", "ar_medium": "AR medium", "ar_large": "AR large",
}
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.small{color:#666;font-size:0.9em}
"""


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value == -1:
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{float(value):.{digits}f}"


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v if isinstance(v, str) else _fmt(v, digits))}</td>"
                                    for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(ev, *, gt_name: str, pred_name: str, score_thr: float = 0.05,
                 title: str | None = None) -> str:
    """The HTML text of the report of `ev` (core.evaluation.Evaluation) at `score_thr`."""
    view = ev.at(score_thr)
    title = title or f"DetLens report: {pred_name}"
    stats = pd.DataFrame({"metric": [_STAT_LABELS[n] for n in STAT_NAMES],
                          "value": [ev.stats[n] for n in STAT_NAMES]})
    at_thr = pd.DataFrame({"at score ≥": [f"{score_thr:.2f}"], f"mAP@{ev.iou_thr:g}": [view.map50],
                           "precision": [view.precision], "recall": [view.recall], "F1": [view.f1],
                           "boxes kept": [int(view.counts["tp"] + sum(view.counts[e.value] for e in PREDICTION_ERRORS))]})
    per_class = view.per_class.merge(ev.per_class[["category_id", "ap", "n_gt"]], on="category_id")
    columns = ["name", "n_gt", "ap50", "ap", "tp"] + [e.value for e in PREDICTION_ERRORS] + ["missed"]
    per_class = per_class[[c for c in columns if c in per_class.columns]].rename(
        columns={"name": "class", "n_gt": "GT", "ap50": f"AP{round(ev.iou_thr * 100)} (at threshold)",
                 "ap": "AP@[.5:.95]"})
    per_class["class"] = per_class["class"].astype(str)
    tide = ev.tide.rename(columns={"error": "error type", "count": "boxes", "dap": "dAP"})
    curve = ev.threshold_curve()
    figures = [tide_figure(ev.tide), threshold_curves_figure(curve, score_thr, best_f1_threshold(curve))]
    plots = [pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
             for i, fig in enumerate(figures)]
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="small">Ground truth <b>{html.escape(gt_name)}</b> ({len(ev.dataset.images):,} images,
{len(ev.dataset.annotations):,} boxes) · predictions <b>{html.escape(pred_name)}</b> · IoU {ev.iou_thr:g} ·
made by DetLens on {made}. The COCO stats use every box; the rest drops boxes below the score threshold.</p>
<h2>Overview</h2>
{_table(stats)}
{_table(at_thr)}
<h2>Per class</h2>
{_table(per_class)}
<h2>Error breakdown</h2>
<p class="small">TIDE error types: dAP is the mAP@{ev.iou_thr:g} gained by fixing every error of that type.</p>
{_table(tide)}
{plots[0]}
<h2>Threshold curves</h2>
{plots[1]}
</body></html>
"""
