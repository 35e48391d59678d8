"""The dashboard server's resident memory against its budget (DETLENS_MEMORY_BUDGET_MB), in a real
`streamlit run app.py` driven by Debian's headless chromium.

    python bench/bench_memory.py [--budget-mb 1536 768] [--old /tmp/detlens-old] [--uploads 30]
                                 [--gc-peer]

Per code version (this checkout at each budget; `--old DIR`, a checkout of the code as it was,
e.g. `git worktree add /tmp/detlens-old 7af1316`, as the peer) it reports the server's RSS
(/proc/PID/status VmRSS; peak: VmHWM):
- uploads: the Overview on sample_data, then N different prediction CSVs (~2 MB, ~50,000 boxes
  each, generated from the sample ground truth) uploaded one after the other in one session,
  each parsed, evaluated and shown;
- IoU sweep: the Overview at competition scale (bench/data/competition, made by
  bench/make_competition_scale.py when absent: 4,883 images, ~490,000 boxes), then the IoU slider
  moved through all its 19 values, each evaluated and shown;
- concurrency (this checkout, first budget): 8 browser sessions opening the Overview at once on
  the real fold (../shared/real-trash fold3_gt.json + fold3_deta_swinL.csv), each checked for
  exception boxes and for the metrics.
--gc-peer adds this checkout at the first budget with Streamlit's full garbage collection after
every script run switched back on (`--runner.postScriptGC true`; .streamlit/config.toml turns it
off for speed), the peer for that setting.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import (chromium_browser, free_port, new_page, page_problems, served,  # noqa: E402
                           wait_until_idle)

COMPETITION = REPO / "bench" / "data" / "competition"
REAL_TRASH = REPO.parent / "shared" / "real-trash"
BUDGET_ENV = "DETLENS_MEMORY_BUDGET_MB"
SIDEBAR_SLIDER = '[data-testid="stSidebar"] [data-testid="stSlider"]'
BOXES_PER_IMAGE = 500
SESSIONS = 8


# ----------------------------------------------------------------------------------- server
@contextmanager
def server(repo: Path, data_dir: Path, budget_mb: int | None, timeout_s: float = 120.0,
           flags: tuple[str, ...] = ()):
    """`streamlit run app.py -- --data DIR` of `repo` on a free port (extra streamlit flags);
    yields (url, pid)."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(repo / "app.py"),
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", *flags, "--", "--data", str(data_dir)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    env.pop(BUDGET_ENV, None)
    if budget_mb is not None:
        env[BUDGET_ENV] = str(budget_mb)
    process = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    with served(process, f"http://127.0.0.1:{port}", timeout_s) as url:
        yield url, process.pid


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of pid in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def settled_rss(pid: int, seconds: float = 3.0) -> tuple[float, float]:
    """RSS once the server is idle (a rerun may still be freeing memory): the last of a few reads."""
    time.sleep(seconds)
    return memory_mb(pid)


# ------------------------------------------------------------------------------------ data
def make_upload_csvs(out: Path, n: int, sample: Path) -> list[Path]:
    """n different submission CSVs on the sample images: jittered GT boxes plus background boxes,
    BOXES_PER_IMAGE per image, a different seed each (so a different sha256)."""
    import json

    coco = json.loads((sample / "train.json").read_text())
    by_image: dict[int, list] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    paths = []
    for k in range(n):
        rng = np.random.default_rng(1000 + k)
        lines = ["PredictionString,image_id"]
        for image in coco["images"]:
            w, h = image["width"], image["height"]
            anns = by_image.get(image["id"], [])
            gt = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
            gt_cls = np.array([a["category_id"] for a in anns], np.int64)
            n_bg = BOXES_PER_IMAGE - len(gt)
            xy = rng.uniform(0, 1, (n_bg, 2)) * [w * 0.8, h * 0.8]
            wh = rng.uniform(0.05, 0.2, (n_bg, 2)) * [w, h]
            boxes = np.vstack([gt + rng.normal(0, 3, gt.shape), np.hstack([xy, wh])])   # xywh
            boxes[:, 2:] += boxes[:, :2]                                                # xyxy
            labels = np.concatenate([gt_cls, rng.integers(0, len(coco["categories"]), n_bg)])
            scores = np.concatenate([rng.uniform(0.5, 1, len(gt)), rng.uniform(0.01, 0.5, n_bg)])
            parts = [f"{c} {s:.4f} {b[0]:.1f} {b[1]:.1f} {b[2]:.1f} {b[3]:.1f}"
                     for c, s, b in zip(labels, scores, np.clip(boxes, 0, [w, h, w, h]))]
            lines.append(f"{' '.join(parts)},{image['file_name']}")
        path = out / f"upload_{k:02d}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------- scenarios
def _open(browser, url: str, timeout_ms: int = 600_000):
    page = new_page(browser)
    page.goto(url)
    wait_until_idle(page, timeout_ms=timeout_ms, quiet_ms=1500)
    return page


def uploads(browser, repo: Path, budget_mb: int | None, csvs: list[Path], flags=()) -> dict:
    """RSS with the Overview open on sample_data, then after each CSV is uploaded and shown."""
    with server(repo, repo / "sample_data", budget_mb, flags=flags) as (url, pid):
        page = _open(browser, f"{url}/Overview")
        start = settled_rss(pid)
        uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').filter(
            has_text="Upload predictions").locator('input[type="file"]')
        for path in csvs:
            uploader.set_input_files(str(path))
            page.wait_for_timeout(300)
            wait_until_idle(page, timeout_ms=300_000, quiet_ms=800)
        problems = page_problems(page)
        shown = f"uploaded: {csvs[-1].name}" in page.inner_text("body")
        end = settled_rss(pid)
        page.context.close()
    return {"start": start, "end": end, "problems": problems, "ok": shown and not problems}


def iou_sweep(browser, repo: Path, budget_mb: int | None, flags=()) -> dict:
    """RSS with the Overview open at competition scale, then after the IoU slider visited all 19 values."""
    with server(repo, COMPETITION, budget_mb, flags=flags) as (url, pid):
        page = _open(browser, f"{url}/Overview")
        start = settled_rss(pid)
        thumb = page.locator(SIDEBAR_SLIDER).filter(has_text="IoU threshold").locator(
            'input[type="range"], [role="slider"]').first
        started = time.perf_counter()
        visited = set()
        for key in ["Home"] + ["ArrowRight"] * 18:  # 0.05, 0.10, ... 0.95
            thumb.focus()
            page.keyboard.press(key)
            page.wait_for_timeout(300)
            wait_until_idle(page, timeout_ms=300_000, quiet_ms=800)
            visited.update(re.findall(r"IoU threshold (0\.\d\d)", page.inner_text("body")))
        seconds = time.perf_counter() - started
        problems = page_problems(page)
        end = settled_rss(pid)
        page.context.close()
    return {"start": start, "end": end, "problems": problems, "seconds": seconds,
            "visited": len(visited), "ok": len(visited) == 19 and not problems}


def concurrent_sessions(browser, repo: Path, budget_mb: int | None) -> dict:
    """SESSIONS sessions opening the Overview of the real fold at the same time."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("fold3_gt.json", "fold3_deta_swinL.csv"):
            shutil.copy(REAL_TRASH / name, Path(tmp) / name)
        with server(repo, Path(tmp), budget_mb) as (url, pid):
            pages = [new_page(browser) for _ in range(SESSIONS)]
            started = time.perf_counter()
            for page in pages:  # all navigations start before any is waited for
                page.goto(f"{url}/Overview", wait_until="commit")
            results = []
            for page in pages:
                wait_until_idle(page, timeout_ms=600_000, quiet_ms=1500)
                text = page.inner_text("body")
                results.append((page_problems(page), "mAP@0.5 (competition)" in text
                                and "fold3_deta_swinL.csv" in text))
            seconds = time.perf_counter() - started
            end = settled_rss(pid)
            for page in pages:
                page.context.close()
    rendered = sum(ok and not problems for problems, ok in results)
    return {"end": end, "rendered": rendered, "seconds": seconds,
            "problems": [p for problems, _ in results for p in problems]}


# ------------------------------------------------------------------------------------ report
def _row(code: str, budget: str, scenario: str, result: dict) -> str:
    start = f"{result['start'][0]:7.0f}" if "start" in result else f"{'':>7}"
    rss, peak = result["end"]
    verdict = ""
    if budget.isdigit():
        verdict = "under" if rss <= int(budget) else "OVER"
    ok = "ok" if result.get("ok", True) else f"FAILED {result.get('problems')}"
    return (f"{code:<10} {budget:>7} {scenario:<34} {start} {rss:8.0f} {peak:8.0f}  "
            f"{verdict:<6} {ok}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-mb", type=int, nargs="+", default=[1536, 768],
                        help="budgets to run this checkout at (the first also runs the concurrency check)")
    parser.add_argument("--old", type=Path, default=None,
                        help="a checkout of the code as it was (the peer), e.g. a git worktree of 7af1316")
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--skip", default="", help="comma-separated: uploads,iou,concurrency")
    parser.add_argument("--gc-peer", action="store_true",
                        help="also run this checkout at the first budget with runner.postScriptGC on")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if not ((COMPETITION / "train.json").exists() and (COMPETITION / "submission.csv").exists()):
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"),
                        "--out", str(COMPETITION)], check=True, cwd=REPO)
    runs = [("this", REPO, b, ()) for b in args.budget_mb]
    if args.gc_peer:
        runs.insert(0, ("gc on", REPO, args.budget_mb[0], ("--runner.postScriptGC", "true")))
    if args.old is not None:
        runs.insert(0, ("old", args.old.resolve(), None, ()))
    rows = []
    header = (f"{'code':<10} {'budget':>7} {'scenario':<34} {'RSS MB':>7} {'after':>8} {'peak':>8}  "
              f"budget")
    with tempfile.TemporaryDirectory() as tmp, chromium_browser() as browser:
        csvs = make_upload_csvs(Path(tmp), args.uploads, REPO / "sample_data")
        size = sum(p.stat().st_size for p in csvs) / len(csvs) / 2 ** 20
        print(f"{len(csvs)} upload CSVs of {size:.1f} MB each ({BOXES_PER_IMAGE * 100:,} boxes)", flush=True)
        for index, (code, repo, budget, flags) in enumerate(runs):
            budget_label = str(budget) if budget is not None else "-"
            if "uploads" not in skip:
                result = uploads(browser, repo, budget, csvs, flags)
                rows.append(_row(code, budget_label, f"{len(csvs)} uploads (sample_data)", result))
                print(rows[-1], flush=True)
            if "iou" not in skip:
                result = iou_sweep(browser, repo, budget, flags)
                rows.append(_row(code, budget_label, f"IoU sweep, {result['visited']}/19 values ({result['seconds']:.0f} s)", result))
                print(rows[-1], flush=True)
            if "concurrency" not in skip and code == "this" and budget == args.budget_mb[0]:
                result = concurrent_sessions(browser, repo, budget)
                rows.append(_row(code, budget_label, f"{SESSIONS} sessions, real fold: "
                                 f"{result['rendered']}/{SESSIONS} ok", {**result, "ok": result["rendered"] == SESSIONS}))
                print(rows[-1], flush=True)
    print()
    print("RSS: the server's resident memory (VmRSS) with the page open before ('RSS MB') and after")
    print("the scenario, settled; peak: its high-water mark (VmHWM). budget: DETLENS_MEMORY_BUDGET_MB.")
    print(header)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
