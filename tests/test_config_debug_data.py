"""`spacy debug data` runs on every shipped training config (it resolves
[training.optimizer] on its own in `nlp.initialize()`, so a `${training.*}`
variable there is an unresolved string), and `spacy-biobert train
--training.max_steps N` keeps the schedule's total_steps at N.

The assemble configs (package*.cfg) hold no [corpora] or [training]: `spacy
assemble` takes them, not `spacy debug data`."""
from pathlib import Path

import pytest
from spacy.util import load_config, registry

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CONFIGS = sorted(
    p for p in (ROOT / "configs").glob("*.cfg") if not p.name.startswith("package")
)
# Continue a trained pipeline (components sourced from ${paths.model}).
STAGES = [p for p in TRAINING_CONFIGS if "source = ${paths.model}" in p.read_text()]
FROM_BASE = [p for p in TRAINING_CONFIGS if p not in STAGES]


def run_spacy_debug_data(config_path: Path, overrides: dict, capsys) -> str:
    """spaCy's own `spacy debug data` (in this process); its report. It exits
    1 when the data has problems it counts as errors (a tiny corpus is one):
    what matters here is that it gets through the config to its summary."""
    from spacy.cli.debug_data import debug_data

    with _may_exit():
        debug_data(config_path, config_overrides=overrides, silent=False)
    out = capsys.readouterr().out
    assert "Pipeline can be initialized with data" in out, out[-3000:]
    assert "Summary" in out, out[-3000:]
    return out


class _may_exit:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is SystemExit and value.code in (0, 1, None)


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=[p.name for p in TRAINING_CONFIGS])
def test_optimizer_block_resolves_on_its_own(path):
    """What `nlp.initialize()` does without an optimizer (spacy debug data):
    resolve [training.optimizer] alone, from the uninterpolated config."""
    config = load_config(path, interpolate=False)
    optimizer = registry.resolve({"optimizer": config["training"]["optimizer"]})["optimizer"]
    assert optimizer.learn_rate is not None


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=[p.name for p in TRAINING_CONFIGS])
def test_shipped_total_steps_equal_max_steps(path):
    """The numbers written out are those `${training.max_steps}` gave."""
    config = load_config(path, interpolate=False)
    training = config["training"]
    assert training["optimizer"]["learn_rate"]["total_steps"] == training["max_steps"]


def test_train_override_of_max_steps_moves_total_steps():
    from spacy_biobert.training import follow_max_steps

    ner = ROOT / "configs" / "ner.cfg"
    assert follow_max_steps(ner, {"training.max_steps": 4}) == {
        "training.max_steps": 4, "training.optimizer.learn_rate.total_steps": 4,
    }
    # an explicit total_steps wins; no max_steps override changes nothing
    both = {"training.max_steps": 4, "training.optimizer.learn_rate.total_steps": 9}
    assert follow_max_steps(ner, both) == both
    assert follow_max_steps(ner, {"paths.train_limit": 3}) == {"paths.train_limit": 3}


@pytest.mark.parametrize("path", FROM_BASE, ids=[p.name for p in FROM_BASE])
def test_spacy_debug_data_runs_on_shipped_config(path, tiny_bert, corpora_dir, capsys):
    overrides = {
        "paths.corpora": str(corpora_dir), "paths.base_model": tiny_bert,
        "paths.train_limit": 3, "paths.dev_limit": 2,
    }
    run_spacy_debug_data(path, overrides, capsys)


def test_spacy_debug_data_runs_on_relations_stage(tiny_bert, tmp_path, capsys):
    from tiny_pipelines import JOINT_PUBTATOR, save_tiny_joint_pipeline

    (stage,) = [p for p in STAGES if p.name == "bc5cdr_relations_stage.cfg"]
    joint = save_tiny_joint_pipeline(tiny_bert, tmp_path / "joint")
    corpora = tmp_path / "corpora" / "bc5cdr"
    corpora.mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / name).write_text(JOINT_PUBTATOR)
    overrides = {"paths.corpora": str(tmp_path / "corpora"), "paths.model": joint}
    run_spacy_debug_data(stage, overrides, capsys)
