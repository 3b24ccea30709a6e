"""The dev curve a training run leaves (OUTPUT/training_curve.jsonl): one line
per evaluation, continued by a resume, replaced by a fresh run; where it
flattens; and bench/training_curve.py reading it."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.util import registry

import spacy_biobert  # noqa: F401
from spacy_biobert.training import CURVE_FILE, flattening_step, read_curve
from spacy_biobert.training.curve import append_point, curve_point

ROOT = Path(__file__).resolve().parents[1]


def points(*scores, key=None):
    return [
        {"step": 100 * i, "score": s, "scores": {key: s} if key else {}, "seconds": 60.0 * i,
         "peak_rss_mb": 1000.0}
        for i, s in enumerate(scores)
    ]


@pytest.mark.parametrize(
    "scores,expected",
    [
        # gains 0.1, then three evaluations under +0.002 on the best: flat after step 100
        ((0.5, 0.6, 0.601, 0.6015, 0.599), 100),
        # still rising by more than the minimum every third evaluation: not flat
        ((0.5, 0.6, 0.601, 0.61, 0.611, 0.62), None),
        # a dip is no gain; the recovery to below the best is none either
        ((0.7, 0.65, 0.69, 0.7), 0),
        # fewer than window evaluations after the last gain: not yet
        ((0.5, 0.6, 0.6),  None),
        ((), None),
    ],
)
def test_flattening_step(scores, expected):
    assert flattening_step(points(*scores)) == expected


def test_flattening_on_a_named_score_and_a_missing_one():
    curve = points(0.5, 0.6, 0.6, 0.6, 0.6, key="ents_f")
    assert flattening_step(curve, key="ents_f") == 100
    assert flattening_step(curve, key="ents_f", window=5) is None
    with pytest.raises(KeyError, match="rel_micro_f"):
        flattening_step(curve, key="rel_micro_f")


def info(step, score):
    return {"epoch": 0, "step": step, "score": score, "losses": {"ner": 2.5},
            "other_scores": {"ents_f": score, "ents_per_type": {"Chemical": {"f": score}},
                             "speed": 1000.0},
            "checkpoints": [], "seconds": 1, "words": 10}


def test_a_point_keeps_the_numeric_scores_and_those_of_score_tables():
    point = curve_point(300, info(0, 0.8), seconds=12.34, peak_rss_mb=512.0)
    assert point == {"step": 300, "seconds": 12.3, "score": 0.8,
                     "scores": {"ents_f": 0.8, "ents_per_type.Chemical.f": 0.8, "speed": 1000.0},
                     "losses": {"ner": 2.5},
                     "peak_rss_mb": 512.0}


def test_a_resume_continues_the_curve_and_a_fresh_run_replaces_it(tmp_path):
    for step, score in ((0, 0.1), (100, 0.5), (200, 0.6)):
        append_point(tmp_path, curve_point(step, info(step, score), 1.0, 1.0))
    # a resume from step 200 re-evaluates step 200, then goes on
    for step, score in ((200, 0.61), (300, 0.7)):
        append_point(tmp_path, curve_point(step, info(step, score), 1.0, 1.0))
    assert [(p["step"], p["score"]) for p in read_curve(tmp_path)] == [
        (0, 0.1), (100, 0.5), (200, 0.61), (300, 0.7)]
    # a fresh run into the same folder starts at step 0 again
    append_point(tmp_path, curve_point(0, info(0, 0.2), 1.0, 1.0))
    assert [(p["step"], p["score"]) for p in read_curve(tmp_path)] == [(0, 0.2)]
    assert not list(tmp_path.glob("*.tmp"))


def test_the_logger_writes_a_line_per_saved_evaluation_counting_resumed_steps(tmp_path):
    nlp = spacy.blank("en")
    nlp.config["training"]["score_weights"] = {"ents_f": 1.0}
    (tmp_path / "model-last").mkdir()
    setup = registry.loggers.get("spacy-biobert.TrainingLogger.v1")(
        progress_every=0, step_offset=400, seconds_offset=100.0)
    log_step, finalize = setup(nlp, io.StringIO(), io.StringIO())
    log_step(dict(info(0, 0.7), output_path=str(tmp_path / "model-last")))
    log_step(None)
    log_step(dict(info(50, 0.75), output_path=str(tmp_path / "model-last")))
    log_step(dict(info(60, 0.9), output_path=None))  # not saved (no output folder): not logged
    finalize()
    curve = read_curve(tmp_path)
    assert [(p["step"], p["score"]) for p in curve] == [(400, 0.7), (450, 0.75)]
    assert curve[0]["seconds"] >= 100.0 and curve[0]["peak_rss_mb"] > 0
    # The loop ended at step 60, after its last saved evaluation (50): the
    # finalizer saved model-last at 60 and says which step the scores are of.
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert (state["step"], state["evaluated_step"], state["score"]) == (460, 450, 0.75)
    assert (tmp_path / "model-last" / "config.cfg").exists()


def test_the_bench_script_prints_the_curve_and_writes_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for point in points(0.5, 0.6, 0.601, 0.6015, 0.599, key="ents_f"):
        append_point(run, point)
    out = tmp_path / "curve.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_curve.py"), str(run), "--key", "ents_f",
         "--output", str(out)],
        capture_output=True, text=True, check=True,
    )
    assert "best: 60.15 at step 300; flat after step 100" in result.stdout
    report = json.loads(out.read_text())
    assert report["runs"][str(run)]["flat_after_step"] == 100
    missing = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_curve.py"), str(tmp_path)],
        capture_output=True, text=True,
    )
    assert missing.returncode == 1 and CURVE_FILE in missing.stderr


def test_the_bench_script_sets_runs_side_by_side(tmp_path):
    short, long = tmp_path / "short", tmp_path / "long"
    for run, scores in ((short, (0.5, 0.6)), (long, (0.5, 0.55, 0.7))):
        run.mkdir()
        for point in points(*scores, key="ents_f"):
            append_point(run, point)
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_curve.py"), str(short), str(long),
         "--key", "ents_f", "--markdown"],
        capture_output=True, text=True, check=True,
    )
    table = result.stdout[result.stdout.index("| step |"):]
    assert f"| step | `{short}` | `{long}` |" in table
    assert "| 100 | **60.00** | 55.00 |" in table and "| 200 |  | **70.00** |" in table
    assert "flat (three evaluations in a row under +0.2)" in table


def test_model_best_is_the_last_evaluation_with_the_top_score():
    from spacy_biobert.training.curve import model_best_point

    assert model_best_point([]) is None
    assert model_best_point(points(0.3, 0.5, 0.5, 0.4))["step"] == 200


@pytest.mark.parametrize(
    "scores,warned",
    [
        ((0.34, 0.16, 0.27), True),  # the untrained model won (cid-marked's curve)
        ((0.34, 0.34), False),  # a tie: spaCy saved the later one
        ((0.1, 0.5), False),
        ((0.34,), False),  # nothing later to compare with
    ],
)
def test_an_untrained_model_best_is_reported(tmp_path, scores, warned):
    from spacy_biobert.training.curve import untrained_best_warning

    for point in points(*scores):
        append_point(tmp_path, point)
    warning = untrained_best_warning(tmp_path)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith("[W010]") and "score 0.340" in warning
        assert "best later: 0.270 at step 200" in warning and "model-last" in warning


def test_the_train_command_warns_when_step_0_stays_model_best(tmp_path, monkeypatch):
    """The CLI reports W010 after spaCy's loop (stood in for: it writes the
    curve the logger would) when no later evaluation beat step 0."""
    import spacy.cli.train
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    def fake_train(config_path, output, use_gpu=-1, overrides=None):
        for point in points(0.34, 0.16, 0.27):
            append_point(Path(output), point)

    monkeypatch.setattr(spacy.cli.train, "train", fake_train)
    result = CliRunner().invoke(
        app, ["train", str(ROOT / "configs" / "cid_marked.cfg"), "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "W010" in result.output and "step-0 evaluation" in result.output
