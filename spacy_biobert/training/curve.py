"""A training run's dev curve: every evaluation of `spacy-biobert.TrainingLogger.v1`
as a line of OUTPUT/training_curve.jsonl, and where the curve flattens.

Each line: {"step", "seconds", "score", "scores", "losses", "peak_rss_mb"},
"scores" holding the evaluation's top-level numeric scores and, as
"ents_per_corpus.bc5cdr.f" and the like, those of its per-type and
per-corpus tables (model-last/meta.json keeps the last evaluation whole).
A resumed run (`spacy-biobert train --resume`) continues the file; a run
that evaluates a step the file already holds (a fresh run at step 0, a
resume re-evaluating its first step) replaces that line and the later ones,
which belong to an earlier run into the same folder.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..errors import Warnings

CURVE_FILE = "training_curve.jsonl"


def curve_point(step: int, info: Mapping[str, Any], seconds: float, peak_rss_mb: float) -> Dict[str, Any]:
    """The curve's line for one evaluation (`info`: what spaCy's loop gives the logger)."""
    scores = {key: round(float(value), 6) for key, value in _numeric_leaves(info.get("other_scores") or {})}
    losses = {key: round(float(value), 6) for key, value in (info.get("losses") or {}).items()}
    return {
        "step": int(step),
        "seconds": round(float(seconds), 1),
        "score": round(float(info.get("score") or 0.0), 6),
        "scores": scores,
        "losses": losses,
        "peak_rss_mb": peak_rss_mb,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_leaves(scores: Mapping[str, Any]):
    """(key, number) for the top-level numeric scores, and "key.sub.leaf" for
    those of score tables two levels deep (ents_per_type, ents_per_corpus:
    {name: {"p", "r", "f"}})."""
    for key, value in scores.items():
        if _is_number(value):
            yield key, value
        elif isinstance(value, Mapping):
            for sub, table in value.items():
                if isinstance(table, Mapping):
                    for leaf, number in table.items():
                        if _is_number(number):
                            yield f"{key}.{sub}.{leaf}", number


def append_point(output: Path, point: Dict[str, Any]) -> None:
    """Add `point` to OUTPUT/training_curve.jsonl, dropping lines of the same
    or later steps (an earlier run's), written whole to a temporary file and
    moved into place, so that a killed run leaves the previous file."""
    path = Path(output) / CURVE_FILE
    kept = [p for p in read_curve(output) if p["step"] < point["step"]] if path.exists() else []
    tmp = path.with_suffix(".jsonl.tmp")
    # the standard json module: srsly's reader rounds floats off (0.7 -> 0.7000000000000001)
    tmp.write_text("".join(json.dumps(p) + "\n" for p in kept + [point]), encoding="utf8")
    tmp.replace(path)


def read_curve(output: Path) -> List[Dict[str, Any]]:
    """The evaluations of the run saved in `output`, in step order ([] without a curve file)."""
    path = Path(output) / CURVE_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf8").splitlines()
    return sorted((json.loads(line) for line in lines if line.strip()), key=lambda p: p["step"])


def flattening_step(
    points: List[Mapping[str, Any]], key: str = "score", window: int = 3, min_gain: float = 0.002
) -> Optional[int]:
    """The first evaluated step after which `window` evaluations in a row
    each gain less than `min_gain` (0.002: 0.2 F1 points) on the best score
    so far, or None while the curve has not flattened (fewer evaluations
    after the last gain). `key`: "score" (spaCy's weighted score) or one of
    the "scores"."""
    values = [p["score"] if key == "score" else p["scores"].get(key) for p in points]
    if any(v is None for v in values):
        missing = next(p["step"] for p, v in zip(points, values) if v is None)
        raise KeyError(f"no score {key!r} at step {missing}")
    for i in range(len(values) - window):
        best = max(values[: i + 1])
        following = values[i + 1 : i + 1 + window]
        gains = []
        for v in following:
            gains.append(v - best)
            best = max(best, v)
        if all(g < min_gain for g in gains):
            return int(points[i]["step"])
    return None


def model_best_point(points: List[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The evaluation spaCy's loop left in model-best: the last one with the
    highest score (it saves model-best at every evaluation that equals the
    best so far); None without evaluations."""
    if not points:
        return None
    top = max(p["score"] for p in points)
    return [p for p in points if p["score"] == top][-1]


def untrained_best_warning(output: Path) -> Optional[str]:
    """W010 when the run in `output` kept its step-0 evaluation (one update)
    as model-best although later evaluations exist; None otherwise."""
    points = read_curve(output)
    best = model_best_point(points)
    if best is None or best["step"] != 0 or len(points) < 2:
        return None
    later = max(points[1:], key=lambda p: p["score"])
    return Warnings.W010.format(
        best=Path(output) / "model-best", first=best["score"], later=later["score"],
        step=later["step"], last=Path(output) / "model-last", output=output,
    )
