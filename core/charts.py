"""Plotly charts of evaluation results and dataset statistics (pure: tables in, figures out)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.outcomes import Outcome

_CURVE_COLORS = {"precision": "#1f77b4", "recall": "#ff7f0e", "f1": "#2ca02c", "map50": "#d62728"}
_CURVE_NAMES = {"precision": "Precision", "recall": "Recall", "f1": "F1"}


def iou_text(iou_thr: float) -> str:
    """An IoU threshold as labels name it: 0.5, 0.75, 0.55 (never 0.5 for 0.75)."""
    return f"{round(float(iou_thr), 2):g}"


def best_f1_threshold(curve: pd.DataFrame) -> float | None:
    """The score threshold with the highest F1 in a threshold curve (score_thr, f1, ...)."""
    f1 = curve["f1"].to_numpy(dtype=np.float64) if len(curve) else np.zeros(0)
    if not np.isfinite(f1).any():
        return None
    return float(curve["score_thr"].to_numpy()[int(np.nanargmax(f1))])


def threshold_curves_figure(curve: pd.DataFrame, score_thr: float, best_thr: float | None, *,
                            title: str = "Metrics against the score threshold",
                            iou_thr: float = 0.5) -> go.Figure:
    """Precision, recall, F1 and mAP at iou_thr (the curve's matching IoU) against score_thr."""
    fig = go.Figure()
    names = {**_CURVE_NAMES, "map50": f"mAP@{iou_text(iou_thr)}"}
    for column in ("precision", "recall", "f1", "map50"):
        if column in curve:
            fig.add_scatter(x=curve["score_thr"], y=curve[column], mode="lines",
                            name=names[column], line=dict(color=_CURVE_COLORS[column]))
    fig.add_vline(x=score_thr, line=dict(color="#444444", dash="dash"),
                  annotation_text=f"current {score_thr:.2f}", annotation_position="top left")
    if best_thr is not None:
        fig.add_vline(x=best_thr, line=dict(color=_CURVE_COLORS["f1"], dash="dot"),
                      annotation_text=f"best F1 {best_thr:.2f}", annotation_position="top right")
    fig.update_layout(title=title, xaxis_title="score threshold", yaxis_range=[0, 1.02],
                      xaxis_range=[0, 1], height=380, margin=dict(l=10, r=10, t=50, b=10),
                      hovermode="x unified")
    return fig


def pr_curve_figure(curve: pd.DataFrame, score_thr: float, *, title: str) -> go.Figure:
    """Precision against recall as the score threshold sweeps, the current threshold marked."""
    ordered = curve.sort_values("score_thr", ascending=False)
    fig = go.Figure()
    fig.add_scatter(x=ordered["recall"], y=ordered["precision"], mode="lines", name="PR",
                    customdata=ordered["score_thr"],
                    hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<br>score ≥ %{customdata:.2f}")
    if len(curve):
        at = curve.iloc[int(np.argmin(np.abs(curve["score_thr"].to_numpy() - score_thr)))]
        fig.add_scatter(x=[at["recall"]], y=[at["precision"]], mode="markers", name="current",
                        marker=dict(size=11, color="#444444", symbol="x"))
    fig.update_layout(title=title, xaxis_title="recall", yaxis_title="precision",
                      xaxis_range=[0, 1.02], yaxis_range=[0, 1.02], height=360,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def tide_figure(tide: pd.DataFrame, iou_thr: float = 0.5, scope: str = "") -> go.Figure:
    """dAP per error type (TIDE-style) as bars, each labelled with its count; scope ends the title."""
    errors = [Outcome(str(e)) for e in tide["error"]]  # in the table's order: TIDE's, as displayed
    fig = go.Figure(go.Bar(
        x=[e.label for e in errors], y=tide["dap"],
        marker_color=[e.color for e in errors],
        text=[f"{c:,} boxes" for c in tide["count"]], textposition="outside",
        hovertemplate="%{x}<br>dAP %{y:.4f}<br>%{text}<extra></extra>"))
    top = float(np.nanmax(tide["dap"])) if len(tide) and np.isfinite(tide["dap"]).any() else 0.0
    fig.update_layout(title=f"Error breakdown: mAP@{iou_text(iou_thr)} gained by fixing each error type{scope}",
                      yaxis_title="dAP", yaxis_range=[0, max(top * 1.25, 0.01)], height=360,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def confusion_figure(confusion: pd.DataFrame) -> go.Figure:
    """Heatmap of a (K+1)x(K+1) confusion table: rows true class, columns predicted class."""
    counts = confusion.to_numpy(dtype=np.float64)
    k = len(confusion)
    show_text = k <= 25  # with 40+ classes the numbers no longer fit; hover still has them
    fig = go.Figure(go.Heatmap(
        z=np.log1p(counts), x=list(confusion.columns), y=list(confusion.index),
        customdata=counts.astype(np.int64), colorscale="Blues", showscale=False,
        text=counts.astype(np.int64) if show_text else None,
        texttemplate="%{text}" if show_text else None,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} boxes<extra></extra>"))
    side = max(420, 22 * k + 160)
    fig.update_layout(title="Confusion matrix (rows: ground truth, columns: prediction)",
                      height=side, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(title="predicted", tickangle=-45, side="bottom"),
                      yaxis=dict(title="ground truth", autorange="reversed"))
    return fig


def class_counts_figure(names: list[str], counts, colors: list[str], *, title: str,
                        y_title: str = "boxes") -> go.Figure:
    """One bar per class, in the class colours."""
    fig = go.Figure(go.Bar(x=names, y=counts, marker_color=colors, text=counts,
                           textposition="outside"))
    fig.update_layout(title=title, yaxis_title=y_title, height=380, xaxis_tickangle=-45,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def integer_bin_edges(lo: int, hi: int, nbins: int) -> np.ndarray:
    """Edges for counts from lo to hi: bins of a whole width w, each holding w whole numbers,
    edges at half-integers (lo - 0.5, lo - 0.5 + w, ...), at most about nbins bins."""
    width = max(1, int(np.ceil((hi - lo + 1) / max(int(nbins), 1))))
    n = int(np.ceil((hi - lo + 1) / width))
    return lo - 0.5 + width * np.arange(n + 1, dtype=np.float64)


def histogram_counts(values, *, nbins: int = 50, log_x: bool = False, integer: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(edges [B+1], counts [B]) of the finite values (positive ones, log-spaced bins, when log_x;
    whole-number bins centred on integers, when integer: for counts such as boxes per image).

    Binned here so that a chart of 490,000 scores sends B bars to the browser, not every value.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if log_x:
        values = values[values > 0]
    if not len(values):
        return np.array([0.0, 1.0]), np.zeros(1, np.int64)
    lo, hi = float(values.min()), float(values.max())
    if integer:
        edges = integer_bin_edges(int(np.floor(lo)), int(np.ceil(hi)), nbins)
    elif log_x:
        edges = np.logspace(np.log10(lo), np.log10(hi) if hi > lo else np.log10(lo) + 1, int(nbins) + 1)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(nbins) + 1)
    counts, edges = np.histogram(values, bins=edges)
    return edges, counts


def histogram_figure(values, *, title: str, x_title: str, log_x: bool = False,
                     nbins: int = 50, integer: bool = False) -> go.Figure:
    """A histogram of one numeric column (log-spaced bins when log_x, whole-number bins when
    integer), binned with numpy."""
    edges, counts = histogram_counts(values, nbins=nbins, log_x=log_x, integer=integer)
    shown = np.log10(edges) if log_x and edges[0] > 0 else edges
    centres, widths = (shown[:-1] + shown[1:]) / 2, np.diff(shown)
    if integer:  # the whole numbers each bar holds: "3" or "10 – 14"
        first, last = np.ceil(edges[:-1]).astype(np.int64), np.floor(edges[1:]).astype(np.int64)
        ranges = [f"{a}" if a == b else f"{a} – {b}" for a, b in zip(first, last)]
        bar = go.Bar(x=centres, y=counts, width=widths * 0.9, marker_color="#4363d8",
                     customdata=ranges, hovertemplate="%{customdata}<br>%{y:,}<extra></extra>")
    else:
        bar = go.Bar(x=centres, y=counts, width=widths * 0.95, marker_color="#4363d8",
                     customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                     hovertemplate="%{customdata[0]:.3g} – %{customdata[1]:.3g}<br>%{y:,}<extra></extra>")
    fig = go.Figure(bar)
    if log_x:
        ticks = np.arange(np.floor(shown[0]), np.ceil(shown[-1]) + 1)
        fig.update_xaxes(tickvals=ticks, ticktext=[f"{10 ** t:g}" for t in ticks])
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="count", height=340,
                      margin=dict(l=10, r=10, t=50, b=10), bargap=0.05)
    return fig


def box_stats(values) -> dict[str, float]:
    """Tukey box-plot statistics of the finite values: q1, median, q3 and the whiskers
    (lowerfence/upperfence: the most extreme values within 1.5 IQR of the box), as plotly draws."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return dict(q1=np.nan, median=np.nan, q3=np.nan, lowerfence=np.nan, upperfence=np.nan)
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    return dict(q1=float(q1), median=float(median), q3=float(q3),
                lowerfence=float(inside.min()), upperfence=float(inside.max()))


def per_class_box_figure(frame: pd.DataFrame, value: str, *, names: dict[int, str],
                         colors: dict[int, str], title: str, y_title: str,
                         log_y: bool = False) -> go.Figure:
    """A box plot of `value` per category_id, one coloured box per class (statistics computed
    here, so the browser gets five numbers per class, not every value)."""
    fig = go.Figure()
    drawn = []
    for category_id, group in frame.groupby("category_id", sort=True):
        values = group[value].to_numpy(np.float64)
        if log_y:
            values = values[values > 0]
        stats = box_stats(values)
        drawn += [stats["lowerfence"], stats["upperfence"]]
        name = names.get(int(category_id), str(category_id))
        fig.add_box(x=[name], name=name, q1=[stats["q1"]], median=[stats["median"]],
                    q3=[stats["q3"]], lowerfence=[stats["lowerfence"]],
                    upperfence=[stats["upperfence"]],
                    marker_color=colors.get(int(category_id), "#888888"), boxpoints=False)
    fig.update_layout(title=title, yaxis_title=y_title, height=400, showlegend=False,
                      xaxis_tickangle=-45, margin=dict(l=10, r=10, t=50, b=10))
    if log_y:
        ticks = log_ticks(drawn)
        fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    return fig


def log_ticks(values) -> list[float]:
    """Tick values of a log axis over `values`: the powers of ten, or 1-2-5 steps when fewer than
    two fall in range (plotly's own labels its minor ticks too: "5 2 5 2")."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return []
    lo, hi = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    decades = [10.0 ** k for k in np.arange(lo, hi + 1)]
    if sum(values.min() <= t <= values.max() for t in decades) >= 2:
        return decades
    return [m * d for d in decades for m in (1, 2, 5) if m * d <= 10 ** hi]


def predicted_vs_true_figure(names: list[str], true_counts, predicted_counts, *,
                             score_thr: float) -> go.Figure:
    """Grouped bars: ground-truth boxes and predicted boxes (score >= score_thr) per class."""
    fig = go.Figure()
    fig.add_bar(x=names, y=true_counts, name="ground truth", marker_color="#1f77b4")
    fig.add_bar(x=names, y=predicted_counts, name=f"predicted (score ≥ {score_thr:.2f})",
                marker_color="#ff7f0e")
    fig.update_layout(title="Predicted vs true boxes per class", barmode="group", height=380,
                      xaxis_tickangle=-45, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig
