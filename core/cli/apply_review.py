"""`python -m core apply-review GT DECISIONS --out FIXED.json [--log CHANGES.csv]`.

Writes a corrected copy of the COCO ground truth with every change of the review decisions
applied (the Label review page's `<gt>.review.json`), and the change log CSV (annotation id,
kind, edit, image_id, before, after, decided at) beside it or at --log. GT itself is never
modified. Exit 1, writing nothing, when a decision names an annotation, image or class the
ground truth lacks (decisions made on another file) or an output cannot be written.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.output_files import OutputError, check_writable, write_text_atomic


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "apply-review", help="apply review decisions to a COCO ground truth, as a new file",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("gt", type=Path, help="COCO ground-truth json (left as it is)")
    p.add_argument("decisions", type=Path, help="the review file (<gt>.review.json)")
    p.add_argument("--out", type=Path, required=True, metavar="FIXED.json", help="the corrected json")
    p.add_argument("--log", type=Path, default=None, metavar="CHANGES.csv",
                   help="the change log (default: FIXED.changes.csv beside --out)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.dataset import load_coco, parse_json, read_source
    from core.problems import ValidationError
    from core.review import ReviewError, apply_decisions, change_log_csv, file_sha256, load_review

    log_path = args.log or args.out.with_name(args.out.stem + ".changes.csv")
    try:
        out = check_writable(args.out, "--out")
        check_writable(log_path, "--log")
    except OutputError as exc:
        print(f"error: {exc}")
        return 1
    if out.resolve() == args.gt.resolve():
        print(f"error: --out {args.out} is the ground truth itself; the original is never modified, give a new path")
        return 1
    try:
        load_coco(args.gt)  # the same checks as everywhere: a broken json is refused with its reasons
        data, name, _ = read_source(args.gt, None)
        doc = parse_json(data, name)
    except ValidationError as exc:
        print(exc)
        print(f"{args.gt}: not a usable COCO ground truth; fix the errors above.")
        return 1
    if not args.decisions.exists():
        print(f"error: {args.decisions}: no such file; give the review file (<gt>.review.json)")
        return 1
    try:
        decisions, sha = load_review(args.decisions)
    except ReviewError as exc:
        print(f"error: {exc}")
        return 1
    if sha is not None and sha != file_sha256(data):
        print(f"warning: {args.decisions} was made on another version of {args.gt} (its sha256 differs); "
              "each decision is checked against this one")
    fixed, log, problems = apply_decisions(doc, decisions)
    for problem in problems:
        print(problem)
    if any(p.is_error for p in problems):
        print(f"nothing written: {sum(p.is_error for p in problems)} decision(s) cannot be applied to {args.gt}")
        return 1
    write_text_atomic(out, json.dumps(fixed))
    write_text_atomic(log_path, change_log_csv(log))
    counts = log["edit"].value_counts().to_dict() if len(log) else {}
    print(f"{len(log)} change(s) applied ({', '.join(f'{k} {v}' for k, v in counts.items()) or 'none'}) "
          f"of {len(decisions)} decision(s); wrote {out} and {log_path}")
    return 0
