"""Every committed config builds its pipeline and validates its training block;
`spacy-biobert train` trains from the raw corpus file, resumes, and evaluates
a last step that no evaluation of spaCy's loop covered."""
import itertools
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from project_commands import project_script
from spacy.schemas import ConfigSchemaTraining
from spacy.util import load_config, load_model_from_config, registry
from tiny_pipelines import write_bc5cdr_corpora

ROOT = Path(__file__).resolve().parents[1]
# Training configs; configs/package.cfg builds the release pipeline from a
# trained one (`spacy assemble`) and is tested in test_packaging.py and the
# smoke workflow.
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.cfg") if p.name != "package.cfg")
# Configs that continue a trained pipeline (every component sourced from
# ${paths.model}) are trained on a tiny joint pipeline in test_staged_config.
# Stages on a trained pipeline: the BC5CDR ones are trained below on a tiny
# joint pipeline; the biomed ones (biomed_joint.cfg, and package_biomed.cfg
# which assembles its release) by tests/test_biomed.py on a tiny biomed run.
BIOMED_STAGES = {"biomed_joint.cfg", "package_biomed.cfg"}
CONFIGS = [p for p in CONFIGS if p.name not in BIOMED_STAGES]
STAGES = [p for p in CONFIGS if "source = ${paths.model}" in p.read_text()]
CONFIGS = [p for p in CONFIGS if p not in STAGES]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds_offline(path, tiny_bert):
    config = load_config(path, overrides={"paths.base_model": tiny_bert})
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert "biobert" in nlp.pipe_names
    T = registry.resolve(nlp.config.interpolate()["training"], schema=ConfigSchemaTraining)
    assert T["max_steps"] > 0


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_data_locations_are_paths(path):
    """Every corpus and base-model location is under [paths] (one override switches it)."""
    config = load_config(path, interpolate=False)
    for name, reader in config["corpora"].items():
        # spacy-biobert.MultiCorpus.v1 holds one reader per corpus
        for sub, part in (reader.get("corpora") or {name: reader}).items():
            assert str(part["path"]).startswith("${paths."), f"{name}.{sub}"
    assert config["components"]["biobert"]["model"]["name"] == "${paths.base_model}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_corpora_resolve_on_real_files(path, corpora_dir):
    config = load_config(path, overrides={"paths.corpora": str(corpora_dir)})
    corpora = registry.resolve(config.interpolate()["corpora"])
    for name, corpus in corpora.items():
        for sub, part in getattr(corpus, "corpora", {name: corpus}).items():
            assert Path(part.path).exists(), f"{path.name} [corpora.{name}.{sub}] -> {part.path}"


# project.yml commands that train a corpus with another corpus's config and
# overrides (no copied config): NCBI-disease NER is configs/ner.cfg with the
# NCBI files and the "ncbi" label map.
NCBI_COMMANDS = ["train-ncbi", "train-ncbi-adapted"]
# What configs/ner_ncbi.cfg spelled out before it was folded into ner.cfg.
NCBI_LABEL_MAP = {
    "SpecificDisease": "Disease",
    "DiseaseClass": "Disease",
    "Modifier": "Disease",
    "CompositeMention": "Disease",
}


def project_train_command(name: str, **project_vars: str):
    """The config path and the --section.key overrides of a project.yml
    `train` command, with ${vars.*} filled in (project defaults, then
    `project_vars`)."""
    from spacy.cli._util import parse_config_overrides

    args = project_script(name, **project_vars)
    rest = args[args.index("train") + 1 :]
    config_path, options = ROOT / rest[0], rest[1:]
    kept = []
    for i, arg in enumerate(options):
        if arg in ("--output", "--gpu-id") or (i and options[i - 1] in ("--output", "--gpu-id")):
            continue
        if arg == "--resume-if-unfinished":  # a flag of `train`, not a config override
            continue
        kept.append(arg)
    return config_path, parse_config_overrides(kept)


def _without(config, keys):
    """A copy of an interpolated config without the dotted `keys`."""
    import copy

    out = copy.deepcopy(dict(config))
    for key in keys:
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node.pop(last)
    return out


@pytest.mark.parametrize("command", NCBI_COMMANDS)
def test_ncbi_commands_train_ner_cfg_on_the_ncbi_files(command):
    """The ncbi workflow trains configs/ner.cfg's recipe unchanged: only the
    corpus files and the label map differ from the BC5CDR run, and the readers
    get the map configs/ner_ncbi.cfg spelled out."""
    config_path, overrides = project_train_command(command, corpora="CORPORA")
    assert config_path == ROOT / "configs" / "ner.cfg"
    ncbi = load_config(config_path, overrides=overrides)
    bc5cdr = load_config(
        config_path,
        overrides={k: v for k, v in overrides.items() if k in ("paths.corpora", "paths.base_model")},
    )
    data = ["paths.train", "paths.dev", "paths.label_map"] + [
        f"corpora.{split}.{key}" for split in ("train", "dev") for key in ("path", "label_map")
    ]
    assert _without(ncbi, data) == _without(bc5cdr, data)
    corpora = registry.resolve(ncbi.interpolate()["corpora"])
    assert corpora["train"].path == "CORPORA/ncbi-disease/NCBItrainset_corpus.txt"
    assert corpora["dev"].path == "CORPORA/ncbi-disease/NCBIdevelopset_corpus.txt"
    assert corpora["train"].label_map == corpora["dev"].label_map == NCBI_LABEL_MAP
    for name, corpus in registry.resolve(bc5cdr.interpolate()["corpora"]).items():
        assert corpus.label_map is None and "/bc5cdr/" in corpus.path, name


@pytest.mark.parametrize("command", NCBI_COMMANDS)
def test_ncbi_commands_read_real_files(command, corpora_dir):
    config_path, overrides = project_train_command(command, corpora=str(corpora_dir))
    config = load_config(config_path, overrides=overrides)
    for name, corpus in registry.resolve(config.interpolate()["corpora"]).items():
        assert Path(corpus.path).exists(), f"{command} [corpora.{name}] -> {corpus.path}"


PUBTATOR = """\
1|t|Cocaine induced acute heart failure.
1|a|Lithium causes nephrotoxicity in rats.
1\t0\t7\tCocaine\tChemical\tD003042
1\t16\t35\tacute heart failure\tDisease\tD006333
1\t37\t44\tLithium\tChemical\tD008094
1\t52\t66\tnephrotoxicity\tDisease\tD007674

2|t|Aspirin was associated with hypotension.
2|a|Patients with epilepsy were given morphine.
2\t0\t7\tAspirin\tChemical\tD001241
2\t28\t39\thypotension\tDisease\tD007022
2\t55\t63\tepilepsy\tDisease\tD004827
2\t75\t83\tmorphine\tChemical\tD009020
"""


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "spacy_biobert", *args], capture_output=True, text=True
    )


def test_train_from_raw_corpus_then_resume(tiny_bert, tmp_path):
    corpora = tmp_path / "corpora" / "bc5cdr"
    corpora.mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / name).write_text(PUBTATOR)
    out = tmp_path / "out"
    common = [
        "--paths.corpora", str(tmp_path / "corpora"),
        "--paths.base_model", tiny_bert,
        "--training.eval_frequency", "2",
        "--training.optimizer.learn_rate.warmup_steps", "1",
    ]
    first = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out),
                    "--training.max_steps", "2", "--training.logger.progress_every", "1", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    # stderr is a pipe here, as in a background log: plain progress lines.
    assert "step 1: " in first.stderr and "s/step" in first.stderr
    state = json.loads((out / "training_state.json").read_text())
    assert state["step"] == 2 and state["peak_rss_mb"] > 0
    resumed = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out),
                      "--resume", "--training.max_steps", "4", *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from step 2" in resumed.stdout
    # The evaluation table's step column continues from step 2, as the state does.
    rows = [line.split() for line in resumed.stdout.splitlines() if re.match(r"^\s*\d+\s+\d+\s+[\d.]+", line)]
    assert [int(row[1]) for row in rows] == [2, 4], resumed.stdout[-2000:]
    # The state counts the whole run's steps and time, not the resumed part's.
    resumed_state = json.loads((out / "training_state.json").read_text())
    assert resumed_state["step"] == 4 and resumed_state["seconds"] >= state["seconds"]
    assert "Trained to step 4" in resumed.stdout
    resume_cfg = load_config(out / "resume.cfg")
    assert resume_cfg["training"]["max_steps"] == 2
    assert resume_cfg["components"]["ner"]["source"] == str((out / "model-last").resolve())
    nlp = spacy.load(out / "model-best")
    assert nlp.pipe_names == ["biobert", "ner"]
    # Nothing left to do: a clear message, not a traceback.
    again = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out),
                    "--resume", "--training.max_steps", "4", *common)
    assert again.returncode == 1 and "E011" in again.stdout


@pytest.mark.parametrize("done", [0, 5, 40, 100, 499])
def test_a_resumed_schedule_warms_up_again_then_follows_the_uninterrupted_one(done):
    from thinc.api import warmup_linear

    from spacy_biobert.training.resume import RESUME_WARMUP_STEPS, _continued_schedule

    warmup, total, rate = 40, 500, 1e-4
    whole = list(itertools.islice(warmup_linear(rate, warmup, total), total + 5))
    settings = _continued_schedule(warmup, total, rate, done)
    resumed = list(itertools.islice(warmup_linear(**settings), total - done + 5))
    ramp = max(warmup - done, min(RESUME_WARMUP_STEPS, total - done - 1))
    if ramp:  # Adam's restarted moments see a gradient before any step
        assert resumed[0] == 0.0
    assert resumed[ramp:] == pytest.approx(whole[done + ramp:], abs=1e-12)
    assert all(r <= w + 1e-12 for r, w in zip(resumed, whole[done:]))


@pytest.mark.parametrize("max_epochs,named", [(0, "training.patience"),
                                               (3, "training.patience or training.max_epochs")])
def test_a_finished_early_run_names_what_can_have_stopped_it(tmp_path, max_epochs, named):
    from spacy_biobert.training import STATE_FILE, check_earlier_run, record_run

    config = load_config(ROOT / "configs" / "ner.cfg", overrides={
        "training.max_epochs": max_epochs, "paths.corpora": str(tmp_path / "corpora")}, interpolate=True)
    output = tmp_path / "out"
    (output / "model-last").mkdir(parents=True)
    record_run(config, output)
    (output / STATE_FILE).write_text(json.dumps({"step": 7, "finished": True}))
    earlier = check_earlier_run(config, output)
    assert not earlier.resume and earlier.why.endswith(f"finished at step 7 of 1200 (stopped by {named})")


def test_resume_if_unfinished_continues_only_a_run_of_the_same_settings(tiny_bert, tmp_path):
    """What a project workflow run again after a kill does: a run of the same
    config, corpora and base model that stopped early continues; a finished
    run, or one of other settings, is trained again from the start."""
    corpora = tmp_path / "corpora" / "bc5cdr"
    corpora.mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / name).write_text(PUBTATOR)
    out = tmp_path / "out"

    def train(*extra):
        result = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out),
                         "--resume-if-unfinished", "--paths.corpora", str(tmp_path / "corpora"),
                         "--paths.base_model", tiny_bert, "--training.eval_frequency", "2",
                         "--training.optimizer.learn_rate.warmup_steps", "1", *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        return " ".join(result.stdout.split())  # the messages, unwrapped

    first = train("--training.max_steps", "4")
    assert "Training from the start: no earlier run" in first
    assert json.loads((out / "training_run.json").read_text())["fingerprint"]
    # killed after its step-2 checkpoint: the state the logger had written then
    state_path = out / "training_state.json"

    def killed_at_step_2():
        state = json.loads(state_path.read_text())
        assert state.pop("finished") is True  # what a loop ending by itself records
        state_path.write_text(json.dumps(dict(state, step=2)))

    killed_at_step_2()
    # the corpus copied anew (same bytes, new modification time) is the same data
    train_file = corpora / "CDR_TrainingSet.PubTator.txt"
    train_file.write_bytes(train_file.read_bytes())
    os.utime(train_file, ns=(train_file.stat().st_atime_ns, train_file.stat().st_mtime_ns + 10**9))
    again = train("--training.max_steps", "4")
    assert "Resuming: the run in" in again and "stopped at step 2 of 4" in again
    assert "Trained to step 4" in again
    finished = train("--training.max_steps", "4")
    assert "Training from the start: the run in" in finished
    assert "finished (step 4 of 4)" in finished
    killed_at_step_2()
    # a corpus file changed since: other settings; the unfinished run is set aside, not lost
    train_file.write_text(PUBTATOR + "\n")
    changed = train("--training.max_steps", "4")
    assert "was made with other settings" in changed
    assert f"The unfinished earlier run is kept in {out / 'superseded'}" in changed
    assert json.loads((out / "superseded" / "training_state.json").read_text())["step"] == 2
    assert (out / "superseded" / "model-last" / "config.cfg").exists()
    assert json.loads((out / "training_state.json").read_text())["step"] == 4
    both = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), "--resume",
                   "--resume-if-unfinished")
    assert both.returncode == 1 and "exclude each other" in both.stdout


def _tiny_corpora(tmp_path: Path) -> Path:
    return write_bc5cdr_corpora(tmp_path, PUBTATOR)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_run_keeps_the_steps_after_its_last_evaluation(tiny_bert, tmp_path, stop):
    """Stopped between two evaluations, a run saves the step it reached, and
    --resume continues from that step (not from the last evaluation)."""
    out = tmp_path / "out"
    common = ["--paths.corpora", str(_tiny_corpora(tmp_path)), "--paths.base_model", tiny_bert,
              "--training.eval_frequency", "1000", "--training.optimizer.learn_rate.warmup_steps", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacy_biobert", "train", str(ROOT / "configs" / "ner.cfg"),
         "--output", str(out), "--training.max_steps", "100000", "--training.logger.progress_every", "1",
         *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in proc.stderr:  # plain progress lines: stderr is a pipe
        if line.startswith("step 5:"):
            break
    proc.send_signal(stop)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "Traceback" not in stderr
    state = json.loads((out / "training_state.json").read_text())
    assert state["step"] >= 5 and state["evaluated_step"] == 0
    assert f"Interrupted at step {state['step']}: saved in {out / 'model-last'}" in " ".join(stdout.split())
    # model-last holds the steps after the step-0 evaluation (model-best's weights)
    last, best = spacy.load(out / "model-last"), spacy.load(out / "model-best")
    assert last.get_pipe("ner").model.to_bytes() != best.get_pipe("ner").model.to_bytes()
    resumed = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), "--resume",
                      "--training.max_steps", str(state["step"] + 2), *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from step {state['step']} " in resumed.stdout
    assert json.loads((out / "training_state.json").read_text())["step"] == state["step"] + 2


def test_a_run_ending_between_evaluations_is_recorded_as_finished(tiny_bert, tmp_path):
    out = tmp_path / "out"
    args = ["train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), "--resume-if-unfinished",
            "--paths.corpora", str(_tiny_corpora(tmp_path)), "--paths.base_model", tiny_bert,
            "--training.max_steps", "5", "--training.eval_frequency", "2",
            "--training.optimizer.learn_rate.warmup_steps", "1"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    # spaCy's loop evaluated steps 0, 2 and 4; step 5, off its grid, is evaluated after it
    assert "Evaluating step 5: the run ended after its last evaluation" in " ".join(first.stdout.split())
    state = json.loads((out / "training_state.json").read_text())
    assert state["step"] == 5 and "evaluated_step" not in state and state["finished"]
    curve = [json.loads(line) for line in (out / "training_curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in curve] == [0, 2, 4, 5]
    assert curve[-1]["score"] == pytest.approx(state["score"])
    assert "ents_f" in json.loads((out / "model-last" / "meta.json").read_text())["performance"]
    again = run_cli(*args)
    assert again.returncode == 0 and "finished (step 5 of 5)" in " ".join(again.stdout.split())


def test_a_run_stopped_by_patience_is_recorded_as_finished(tiny_bert, tmp_path):
    """Early stopping is the end of the run, not a kill to recover from."""
    out = tmp_path / "out"
    args = ["train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), "--resume-if-unfinished",
            "--paths.corpora", str(_tiny_corpora(tmp_path)), "--paths.base_model", tiny_bert,
            "--training.max_steps", "50", "--training.eval_frequency", "1",
            "--training.patience", "2", "--training.optimizer.learn_rate.initial_rate", "0"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    # no update changes the score, so step 0 stays the best and step 2 ends the run
    state = json.loads((out / "training_state.json").read_text())
    assert (state["step"], state["finished"]) == (2, True)
    assert "Trained to step 2 (stopped early by training.patience)" in " ".join(first.stdout.split())
    again = " ".join(run_cli(*args).stdout.split())
    assert "finished at step 2 of 50 (stopped by training.patience)" in again
    assert "Training from the start" in again


def test_resume_without_a_run_is_a_clear_error(tmp_path, tiny_bert):
    result = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(tmp_path),
                     "--resume", "--paths.base_model", tiny_bert)
    assert result.returncode == 1 and "E010" in result.stdout


@pytest.mark.parametrize("path", STAGES, ids=[p.name for p in STAGES])
def test_staged_config_trains_on_a_joint_pipeline(path, tiny_bert, tmp_path):
    """configs/bc5cdr_relations_stage.cfg: relations trained further on the
    frozen transformer and ner of a joint run; NER is left exactly as it was."""
    from tiny_pipelines import JOINT_PUBTATOR, save_tiny_joint_pipeline

    joint = save_tiny_joint_pipeline(tiny_bert, tmp_path / "joint", steps=1)
    corpora = tmp_path / "corpora" / "bc5cdr"
    corpora.mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / name).write_text(JOINT_PUBTATOR)
    out = tmp_path / "staged"
    result = run_cli(
        "train", str(path), "--output", str(out), "--paths.corpora", str(tmp_path / "corpora"),
        "--paths.model", joint, "--training.max_steps", "2", "--training.eval_frequency", "2",
        "--training.optimizer.learn_rate.warmup_steps", "1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = spacy.load(joint), spacy.load(out / "model-last")
    assert after.pipe_names == before.pipe_names
    assert after.get_pipe("biobert").listening_components == ["ner", "biobert_relations"]

    def params(nlp, name):
        model = nlp.get_pipe(name).model
        return [n.get_param(p) for n in model.walk() for p in n.param_names if n.has_param(p)]

    def same(a, b):
        return len(a) == len(b) and all(x.shape == y.shape and (x == y).all() for x, y in zip(a, b))

    # Frozen: the encoder's output and the NER weights are unchanged.
    text = "Cocaine induced seizures."
    states = [nlp(text)._.trf_data.model_output.last_hidden_state for nlp in (before, after)]
    assert same(*states)
    assert same(params(before, "ner"), params(after, "ner"))
    assert not same(params(before, "biobert_relations"), params(after, "biobert_relations"))


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    """A tiny NER run of 5 steps evaluated at 0, 2 and 4 by spaCy's loop, then at 5."""
    tmp = tmp_path_factory.mktemp("last_step")
    corpora, out = write_bc5cdr_corpora(tmp, PUBTATOR), tmp / "out"
    overrides = {"paths.corpora": str(corpora), "paths.base_model": tiny_bert,
                 "training.max_steps": 5, "training.eval_frequency": 2,
                 "training.optimizer.learn_rate.warmup_steps": 1}
    args = [item for key, value in overrides.items() for item in (f"--{key}", str(value))]
    result = run_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    config = load_config(ROOT / "configs" / "ner.cfg", overrides=overrides, interpolate=True)
    return config, out


def _unevaluate_last_step(out: Path, best_score: float) -> None:
    """Back to the state the loop leaves (step 5 after the step-4 evaluation),
    with model-best's recorded score set to `best_score`."""
    from spacy_biobert.training import STATE_FILE

    state = srsly.read_json(out / STATE_FILE)
    srsly.write_json(out / STATE_FILE, dict(state, evaluated_step=4))
    meta = srsly.read_json(out / "model-best" / "meta.json")
    meta["performance"] = {key: best_score for key in meta["performance"]}
    srsly.write_json(out / "model-best" / "meta.json", meta)


def test_a_better_last_step_becomes_model_best(finished_run):
    from spacy_biobert.training.last_step import evaluate_last_step, unevaluated_last_step

    config, out = finished_run
    _unevaluate_last_step(out, best_score=-1.0)
    assert unevaluated_last_step(out) == 5
    scored = evaluate_last_step(config, out)
    assert (scored.step, scored.evaluated_step, scored.is_best) == (5, 4, True)
    best = json.loads((out / "model-best" / "meta.json").read_text())["performance"]
    assert best == json.loads((out / "model-last" / "meta.json").read_text())["performance"]
    assert unevaluated_last_step(out) is None
    assert evaluate_last_step(config, out) is None  # nothing left to evaluate


def test_a_worse_last_step_leaves_model_best(finished_run):
    from spacy_biobert.training.last_step import evaluate_last_step

    config, out = finished_run
    _unevaluate_last_step(out, best_score=2.0)
    scored = evaluate_last_step(config, out)
    assert not scored.is_best and scored.best_score > scored.score
    assert set(json.loads((out / "model-best" / "meta.json").read_text())["performance"].values()) == {2.0}
    # recorded whatever the outcome: the state and the curve's last line
    state = srsly.read_json(out / "training_state.json")
    curve = [json.loads(line) for line in (out / "training_curve.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 5 and curve[-1]["score"] == pytest.approx(scored.score)
    assert state["score"] == pytest.approx(scored.score) and "evaluated_step" not in state
