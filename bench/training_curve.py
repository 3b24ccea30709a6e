"""The dev curve of one or more training runs, from OUTPUT/training_curve.jsonl
(written by `spacy-biobert.TrainingLogger.v1` at every evaluation), and the
step where each flattens: the first evaluated step after which three
evaluations in a row each gain less than 0.2 points on the best so far.

    .venv/bin/python bench/training_curve.py training/biomed training/biomed-joint \
        --key ents_f --output metrics/biomed_curve.json

--key: "score" (spaCy's weighted score, what model-best is chosen by; the
default) or any score of the evaluation (ents_f, rel_micro_f, or from its
tables ents_per_corpus.bc5cdr.f, ents_per_type.Gene.f, ...).
--window / --min-gain change the flattening rule (defaults 3 and 0.002).
--markdown: also print the runs side by side as a Markdown table (a row per
evaluated step, a column per run), as the README shows curves and ablations.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spacy_biobert.training.curve import CURVE_FILE, flattening_step, read_curve  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training output folders")
    parser.add_argument("--key", default="score")
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--min-gain", type=float, default=0.002)
    parser.add_argument("--output", type=Path, default=None, help="write the curves as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a side-by-side table")
    args = parser.parse_args()
    report = {"key": args.key, "window": args.window, "min_gain": args.min_gain, "runs": {}}
    for run in args.runs:
        points = read_curve(run)
        if not points:
            print(f"{run}: no {CURVE_FILE} (a run of spacy-biobert.TrainingLogger.v1 writes one)",
                  file=sys.stderr)
            return 1
        try:
            flat = flattening_step(points, key=args.key, window=args.window, min_gain=args.min_gain)
        except KeyError as err:
            print(f"{run}: {err.args[0]}; scores there: {sorted(points[-1]['scores'])}", file=sys.stderr)
            return 1
        values = [p["score"] if args.key == "score" else p["scores"][args.key] for p in points]
        print(f"{run} ({args.key})")
        print(f"{'step':>7} {'minutes':>8} {args.key:>12} {'peak MB':>9}")
        for p, v in zip(points, values):
            print(f"{p['step']:>7} {p['seconds'] / 60:>8.1f} {100 * v:>12.2f} {p['peak_rss_mb']:>9.0f}")
        best = max(range(len(values)), key=values.__getitem__)
        print(f"best: {100 * values[best]:.2f} at step {points[best]['step']}; "
              + (f"flat after step {flat}" if flat is not None
                 else f"not flat yet ({args.window} evaluations in a row under "
                      f"+{100 * args.min_gain:.1f} not reached)"))
        report["runs"][str(run)] = {
            "points": points, "best_step": points[best]["step"], "best": values[best],
            "flat_after_step": flat,
        }
    if args.markdown:
        print()
        print(markdown_table(report, args.key))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def markdown_table(report: dict, key: str) -> str:
    """The runs' curves side by side: a row per evaluated step, a column per
    run ("" where a run has no evaluation at that step), the best bold."""
    runs = report["runs"]
    values = {
        run: {p["step"]: (p["score"] if key == "score" else p["scores"][key]) for p in data["points"]}
        for run, data in runs.items()
    }
    steps = sorted({step for by_step in values.values() for step in by_step})
    lines = ["| step | " + " | ".join(f"`{run}`" for run in runs) + " |",
             "| ---: | " + " | ".join("---:" for _ in runs) + " |"]
    for step in steps:
        cells = []
        for run, data in runs.items():
            value = values[run].get(step)
            cell = "" if value is None else f"{100 * value:.2f}"
            cells.append(f"**{cell}**" if value is not None and step == data["best_step"] else cell)
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    flat = [f"`{run}`: " + (f"after step {data['flat_after_step']}" if data["flat_after_step"] is not None
                            else "not yet") for run, data in runs.items()]
    lines.append("")
    lines.append(f"{key}; flat (three evaluations in a row under +{100 * report['min_gain']:.1f}): "
                 + "; ".join(flat))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
