"""`python -m core catalog add|list|show|set`: the submission catalog from the command line.

The store is --db URL, else DETLENS_DB_URL, else SQLite at ~/.detlens/catalog.sqlite; a
PostgreSQL URL (postgresql://user:password@host:port/db) is team mode. The password is never printed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

FIELD_OPTIONS = (("--name", "display_name"), ("--model", "model"), ("--notes", "notes"),
                 ("--author", "author"), ("--lb", "lb_score"), ("--private", "private_score"))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("catalog", help="remember submissions, their scores and results (SQLite or PostgreSQL)",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    sub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)

    def common(q):
        q.add_argument("--db", default=None, metavar="URL",
                       help="store URL or SQLite file (default: $DETLENS_DB_URL, else ~/.detlens/catalog.sqlite)")

    def fields(q):
        q.add_argument("--name", help="display name")
        q.add_argument("--model", help="model that made it")
        q.add_argument("--notes", help="free text")
        q.add_argument("--author", help="who made it")
        q.add_argument("--lb", metavar="SCORE", help="public leaderboard score")
        q.add_argument("--private", metavar="SCORE", help="private leaderboard score")

    add = sub.add_parser("add", help="register a submission file (the same content is one entry)")
    add.add_argument("file", type=Path, help="submission CSV or COCO results json")
    add.add_argument("--gt", type=Path, default=None, help="also evaluate against this GT and cache the results")
    add.add_argument("--iou", type=float, default=0.5, help="IoU of the cached evaluation (default 0.5)")
    fields(add)
    common(add)
    lst = sub.add_parser("list", help="every submission with its scores")
    lst.add_argument("--json", action="store_true", help="print json instead of a table")
    lst.add_argument("--gt", type=Path, default=None,
                     help="show validation mAP against this GT (default: the GT with the most cached results)")
    common(lst)
    show = sub.add_parser("show", help="one submission: its fields and cached results")
    show.add_argument("id", type=int)
    common(show)
    edit = sub.add_parser("set", help="edit the user fields of a submission (an empty value clears it)")
    edit.add_argument("id", type=int)
    fields(edit)
    common(edit)
    p.set_defaults(run=run)


def _fields(args) -> dict:
    return {field: getattr(args, opt[2:]) for opt, field in FIELD_OPTIONS if getattr(args, opt[2:], None) is not None}


def _open(args):
    from core.catalog.store import Catalog, resolve_url

    return Catalog(resolve_url(args.db))


def run(args: argparse.Namespace) -> int:
    from core.catalog.store import CatalogError

    try:
        catalog = _open(args)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return {"add": _add, "list": _list, "show": _show, "set": _set}[args.catalog_command](catalog, args)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        catalog.close()


def _add(catalog, args) -> int:
    from core.catalog.service import evaluate_cached, ground_truth_key, register_predictions_file
    from core.catalog.store import _checked_fields
    from core.formats import load_any_predictions, load_ground_truth
    from core.problems import ValidationError

    fields = _checked_fields(_fields(args))  # a bad --lb is refused before anything is read
    if not 0.0 < args.iou <= 1.0:
        print(f"error: --iou {args.iou} is not in (0, 1]; give e.g. --iou 0.5", file=sys.stderr)
        return 1
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: error: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    dataset = None
    if args.gt is not None:
        try:
            dataset = load_ground_truth(args.gt)
        except ValidationError as exc:
            print(f"{args.gt}: not a usable ground truth: {exc}", file=sys.stderr)
            return 1
    try:
        preds = load_any_predictions(data, dataset, name=str(args.file))
    except ValidationError as exc:
        print(f"{args.file}: not usable as predictions, not registered: {exc}", file=sys.stderr)
        return 1
    sub, created = register_predictions_file(catalog, data, args.file.name, preds, **fields)
    print(f"#{sub.id} {sub.name}: " + ("registered" if created else "already in the catalog (same content)")
          + f" · {sub.n_boxes:,} boxes on {sub.n_images:,} images · store {catalog.masked_url}")
    if dataset is not None and len(dataset.annotations):
        payload, cached = evaluate_cached(catalog, dataset, ground_truth_key(args.gt), args.gt.name, preds,
                                          sub.sha256, args.iou)
        print(f"against {args.gt.name} (IoU {args.iou:g}): mAP@0.5 {payload['stats']['map50']:.4f} · "
              f"mAP {payload['stats']['map']:.4f}" + (" (cached)" if cached else ""))
    return 0


def _choose_gt(catalog, args) -> tuple[str | None, str | None]:
    from core.catalog.service import ground_truth_key

    if args.gt is not None:
        return ground_truth_key(args.gt), args.gt.name
    known = catalog.ground_truths()
    if not known:
        return None, None
    key, name, _ = max(known, key=lambda row: row[2])
    return key, name


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _list(catalog, args) -> int:
    gt_key, gt_name = _choose_gt(catalog, args)
    results = catalog.results_for(gt_key, 0.5) if gt_key else {}
    rows = []
    for sub in catalog.list():
        stats = results.get(sub.sha256, {}).get("stats", {})
        rows.append({"id": sub.id, "name": sub.name, "file_name": sub.file_name, "model": sub.model,
                     "author": sub.author, "n_boxes": sub.n_boxes, "first_seen": sub.first_seen.isoformat(),
                     "lb_score": sub.lb_score, "private_score": sub.private_score,
                     "val_map50": stats.get("map50"), "val_map": stats.get("map"), "notes": sub.notes})
    if args.json:
        print(json.dumps({"store": catalog.masked_url, "gt": gt_name, "submissions": rows}, indent=1))
        return 0
    print(f"store {catalog.masked_url} · {len(rows)} submission(s)"
          + (f" · validation against {gt_name} (IoU 0.5)" if gt_name else " · no cached validation result"))
    if rows:
        width = max(len("name"), *(len(r["name"]) for r in rows))
        print(f"{'id':>4}  {'name':<{width}}  {'val mAP50':>9}  {'val mAP':>8}  {'LB':>7}  {'model'}")
        for r in rows:
            print(f"{r['id']:>4}  {r['name']:<{width}}  {_num(r['val_map50']):>9}  {_num(r['val_map']):>8}  "
                  f"{_num(r['lb_score']):>7}  {r['model'] or ''}")
    return 0


def _show(catalog, args) -> int:
    try:
        sub = catalog.get(args.id)
    except KeyError:
        print(f"error: no submission #{args.id} in {catalog.masked_url}; `python -m core catalog list` lists them",
              file=sys.stderr)
        return 1
    for key, value in sub.__dict__.items():
        print(f"{key:>14}: {'' if value is None else value}")
    for gt_key, gt_name, _ in catalog.ground_truths():
        for iou in (0.5,):
            payload = catalog.result(gt_key, sub.sha256, iou)
            if payload:
                s = payload["stats"]
                print(f"{'result':>14}: {gt_name} IoU {iou:g}: mAP@0.5 {s['map50']:.4f} mAP {s['map']:.4f} "
                      f"mAP@0.75 {s['map75']:.4f}")
    return 0


def _set(catalog, args) -> int:
    fields = _fields(args)
    if not fields:
        print("error: nothing to set; give e.g. --lb 0.712 or --notes '...'", file=sys.stderr)
        return 1
    try:
        sub = catalog.update(args.id, **{k: (v if v != "" else None) for k, v in fields.items()})
    except KeyError:
        print(f"error: no submission #{args.id} in {catalog.masked_url}", file=sys.stderr)
        return 1
    print(f"#{sub.id} {sub.name}: " + ", ".join(f"{k} = {getattr(sub, k)}" for k in fields))
    return 0
