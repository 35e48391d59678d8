"""Figures of the deeper-analysis pages: slice bars, TIDE per class heatmap, reliability diagram,
a class's operating points. Each point carries `customdata` naming what it stands for, so a
click (Streamlit's selection event) can open the boxes behind it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.outcomes import ERROR_TYPES

TINY_COLOR = "#c8c8c8"


def slice_bars_figure(table: pd.DataFrame, whole_ap50: float, iou_thr: float) -> go.Figure:
    """Horizontal bars: each slice's AP at the IoU minus the whole set's, worst at the top; tiny
    slices grey. customdata: [dimension, slice]."""
    delta = table["delta_ap50"].to_numpy(float)
    colors = np.where(table["tiny"], TINY_COLOR, np.where(delta < 0, "#d62728", "#2ca02c"))
    labels = [f"{d} · {s}" for d, s in zip(table["dimension"], table["slice"])]
    fig = go.Figure(go.Bar(
        x=np.nan_to_num(delta), y=labels, orientation="h", marker_color=colors,
        customdata=np.stack([table["dimension"], table["slice"], table["n_gt"], table["ap50"]], axis=1),
        hovertemplate="%{customdata[0]}: %{customdata[1]}<br>AP %{customdata[3]:.3f} (%{x:+.3f} vs all)"
                      "<br>%{customdata[2]} GT boxes<extra></extra>"))
    fig.update_layout(
        title=f"AP@{iou_thr:.2f} of each slice minus the whole set's ({whole_ap50:.3f}); grey: few boxes",
        xaxis_title="ΔAP vs all", yaxis=dict(autorange="reversed"), height=max(320, 22 * len(table) + 90),
        margin=dict(l=10, r=10, t=50, b=10), clickmode="event+select")
    return fig


def tide_heatmap_figure(table: pd.DataFrame) -> go.Figure:
    """Classes x TIDE error types, dAP as colour (tide_per_class's table, rows in its order)."""
    z = table[[e.value for e in ERROR_TYPES]].to_numpy(float)
    fig = go.Figure(go.Heatmap(
        z=z, x=[e.label for e in ERROR_TYPES], y=table["name"].astype(str).tolist(),
        colorscale="Reds", zmin=0, colorbar=dict(title="dAP"),
        text=np.round(z, 3), texttemplate="%{text}" if len(table) <= 40 else None,
        hovertemplate="%{y}<br>%{x}<br>dAP %{z:.4f}<extra></extra>"))
    fig.update_layout(title="TIDE dAP per class: AP of the class gained by fixing each error type",
                      height=max(320, 22 * len(table) + 110), yaxis=dict(autorange="reversed"),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def reliability_figure(bins: pd.DataFrame, ece: float, iou_thr: float) -> go.Figure:
    """Accuracy per score bin against the diagonal; bar width = bin, hover = count. customdata:
    [bin_lower, bin_upper, count]."""
    centre = (bins["bin_lower"] + bins["bin_upper"]) / 2
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=centre, y=bins["avg_accuracy"], width=(bins["bin_upper"] - bins["bin_lower"]) * 0.95,
        name="accuracy (TP fraction)", marker_color="#1f77b4",
        customdata=np.stack([bins["bin_lower"], bins["bin_upper"], bins["count"]], axis=1),
        hovertemplate="scores %{customdata[0]:.2f}–%{customdata[1]:.2f}<br>accuracy %{y:.3f}"
                      "<br>%{customdata[2]} boxes<extra></extra>"))
    fig.add_trace(go.Scatter(x=centre, y=bins["avg_confidence"], mode="markers", name="mean score",
                             marker=dict(color="#ff7f0e", size=9), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line=dict(color="#888", dash="dash"), hoverinfo="skip"))
    fig.update_layout(title=f"Reliability at IoU {iou_thr:.2f} · ECE {ece:.4f}", xaxis_title="score",
                      yaxis_title="fraction correct", xaxis_range=[0, 1], yaxis_range=[0, 1.02], height=380,
                      margin=dict(l=10, r=10, t=50, b=10), clickmode="event+select")
    return fig


def operating_points_figure(points: pd.DataFrame, title: str, current_thr: float,
                            marks: dict[str, float]) -> go.Figure:
    """Precision, recall and F1 against the score threshold (exact, at every distinct score),
    the current threshold and the named thresholds (best F1, ...) marked. customdata: score."""
    fig = go.Figure()
    for column, color in (("precision", "#1f77b4"), ("recall", "#2ca02c"), ("f1", "#d62728")):
        fig.add_trace(go.Scatter(x=points["score_thr"], y=points[column], name=column, mode="lines+markers",
                                 marker=dict(size=4), line=dict(color=color, shape="hv"),
                                 customdata=points["score_thr"],
                                 hovertemplate=f"score ≥ %{{x:.4f}}<br>{column} %{{y:.3f}}<extra></extra>"))
    fig.add_vline(x=current_thr, line=dict(color="#444", dash="dot"),
                  annotation_text=f"current {current_thr:.2f}", annotation_position="top left")
    for name, value in marks.items():
        if value is not None and np.isfinite(value):
            fig.add_vline(x=value, line=dict(color="#9467bd", dash="dash"),
                          annotation_text=f"{name} {value:.3f}", annotation_position="bottom right")
    fig.update_layout(title=title, xaxis_title="score threshold (keep ≥)", yaxis_range=[0, 1.02], height=380,
                      margin=dict(l=10, r=10, t=50, b=10), clickmode="event+select")
    return fig


_ANALYZE_COLORS = ["#ffffff", "#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#8c8c8c"]


def analyze_figure(curves: pd.DataFrame, ap: pd.Series, title: str) -> go.Figure:
    """COCO analyze()'s PR curves, filled between neighbours as MMDetection's makeplot draws
    them; each legend entry gives the curve's area ([.xxx] C75 ...)."""
    fig = go.Figure()
    recall = curves["recall"]
    fig.add_trace(go.Scatter(x=recall, y=np.zeros(len(recall)), mode="lines", line=dict(width=0),
                             showlegend=False, hoverinfo="skip"))
    for i, name in enumerate(ap.index):
        fig.add_trace(go.Scatter(
            x=recall, y=curves[name], mode="lines", fill="tonexty", name=f"[{ap[name]:.3f}] {name}",
            line=dict(color="#333", width=0.8), fillcolor=_ANALYZE_COLORS[i + 1],
            hovertemplate=f"{name}<br>recall %{{x:.2f}}<br>precision %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="recall", yaxis_title="precision", xaxis_range=[0, 1],
                      yaxis_range=[0, 1.02], height=420, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def with_cell_picks(fig: go.Figure, table: pd.DataFrame) -> go.Figure:
    """The heatmap `fig` of `table` (counts) with a near-invisible square marker on every cell
    (customdata: [row, column, count]): plotly selects points, not heatmap cells, so a click on
    a cell picks its marker; the marker carries the cell's hover text."""
    rows, cols = list(table.index), list(table.columns)
    ys, xs = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
    counts = table.to_numpy().ravel()
    fig.add_trace(go.Scatter(
        x=np.asarray(cols, dtype=object)[xs.ravel()], y=np.asarray(rows, dtype=object)[ys.ravel()],
        mode="markers", marker=dict(symbol="square", size=14, opacity=0.01, color="#000"),
        customdata=np.stack([ys.ravel(), xs.ravel(), counts], axis=1), showlegend=False,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[2]} boxes · click: its images"
                      "<extra></extra>"))
    fig.update_layout(clickmode="event+select")
    return fig
