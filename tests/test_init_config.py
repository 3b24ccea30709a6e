"""`spacy-biobert init-config` writes a config for your own labels that
`spacy debug data` reads and that trains NER and relations from the first
step; `spacy-biobert debug-data` checks the data against it."""
import json
from pathlib import Path

import pytest
from own_data import documents, write_jsonl
from spacy.util import load_config
from test_config_debug_data import run_spacy_debug_data
from typer.testing import CliRunner

import spacy_biobert  # noqa: F401
from spacy_biobert.cli import app
from spacy_biobert.corpora import read_corpus, write_corpus
from spacy_biobert.training.own_config import init_config, parse_relation

runner = CliRunner()
CAUSES = "CAUSES:Drug->AdverseEvent"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The made-up corpus as JSONL files and as brat folders."""
    folder = tmp_path_factory.mktemp("own")
    paths = {
        "train.jsonl": write_jsonl(folder / "train.jsonl", documents(8)),
        "dev.jsonl": write_jsonl(folder / "dev.jsonl", documents(4, offset=8)),
    }
    for split in ("train", "dev"):
        write_corpus(read_corpus(paths[f"{split}.jsonl"]), folder / split, format="brat")
        paths[split] = folder / split
    return paths


def test_config_for_your_labels(data):
    config = init_config(["Drug", "AdverseEvent"], [CAUSES], data["train"], data["dev"])
    assert config["nlp"]["pipeline"] == ["biobert", "ner", "biobert_relations"]
    rel = config["components"]["biobert_relations"]
    assert rel["gold_entities"] is True
    assert rel["candidates"]["allowed_pairs"] == [["Drug", "AdverseEvent"]]
    assert config["initialize"]["components"]["biobert_relations"] == {
        "labels": ["CAUSES"], "concept_labels": []
    }
    assert config["corpora"]["train"]["@readers"] == "spacy-biobert.BratCorpus.v1"
    training = config["training"]
    assert training["optimizer"]["learn_rate"]["total_steps"] == training["max_steps"] == 600
    weights = training["score_weights"]
    assert weights["ents_f"] == weights["rel_micro_f"] == 0.5
    assert weights["rel_doc_f"] is weights["rel_doc_p"] is None  # no document-level label: no columns
    assert "${training" not in config.to_str()


def test_reader_from_the_format_table(data, tmp_path):
    config = init_config(["Drug", "AdverseEvent"], [CAUSES], data["train.jsonl"], data["dev.jsonl"])
    assert config["corpora"]["dev"]["@readers"] == "spacy-biobert.JSONLCorpus.v1"
    write_corpus(read_corpus(data["train.jsonl"]), tmp_path / "train.spacy")
    config = init_config(["Drug", "AdverseEvent"], [CAUSES], tmp_path / "train.spacy", data["dev"])
    assert config["corpora"]["train"]["@readers"] == "spacy.Corpus.v1"
    assert config["corpora"]["dev"]["@readers"] == "spacy-biobert.BratCorpus.v1"


def test_document_level_relations_turn_linking_on(data):
    config = init_config(["Chemical", "Disease"], ["CID:Chemical->Disease:document"],
                         data["train"], data["dev"], gpu=True)
    assert config["nlp"]["pipeline"] == [
        "biobert", "ner", "biobert_abbreviations", "biobert_linker", "biobert_relations"
    ]
    assert config["initialize"]["components"]["biobert_relations"]["concept_labels"] == ["CID"]
    weights = config["training"]["score_weights"]
    assert weights["rel_doc_f"] == 0.5 and weights["rel_micro_f"] is None
    assert config["components"]["biobert"]["model"]["mixed_precision"] is True


def test_ner_only_without_relations(data):
    config = init_config(["Drug"], [], data["train"], data["dev"])
    assert config["nlp"]["pipeline"] == ["biobert", "ner"]
    assert "rel_micro_f" not in config["training"]["score_weights"]


@pytest.mark.parametrize("entities,relations,match", [
    (["Drug"], ["CAUSES Drug AdverseEvent"], r"\[E812\]"),
    (["Drug", "AdverseEvent"], ["CAUSES:Drugs->AdverseEvent"], r"\[E813\].*'Drugs'"),
    ([" "], [], r"\[E814\]"),
    (["A", "B"], ["R:A->B", "R:A->B:document"], r"\[E815\]"),
])
def test_bad_specs_are_coded_errors(data, entities, relations, match):
    with pytest.raises(ValueError, match=match):
        init_config(entities, relations, data["train"], data["dev"])


def test_parse_relation_takes_several_pairs_and_a_level():
    spec = parse_relation("LINKED:Drug->AdverseEvent,AdverseEvent->Drug:document")
    assert (spec.label, spec.pairs, spec.level) == (
        "LINKED", [("Drug", "AdverseEvent"), ("AdverseEvent", "Drug")], "document"
    )


def test_spacy_debug_data_runs_on_the_generated_config(data, tiny_bert, tmp_path, capsys):
    out = tmp_path / "my.cfg"
    init_config(["Drug", "AdverseEvent"], [CAUSES], data["train"], data["dev"]).to_disk(out)
    report = run_spacy_debug_data(out, {"paths.base_model": tiny_bert}, capsys)
    assert "Named Entity Recognition" in report


def test_cli_writes_the_config_and_debug_data_checks_it(data, tiny_bert, tmp_path):
    out = tmp_path / "my.cfg"
    args = ["init-config", str(out), "--entities", "Drug,AdverseEvent", "--relation", CAUSES,
            "--train", str(data["train"]), "--dev", str(data["dev"]), "--base-model", tiny_bert]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_config(out)["paths"]["base_model"] == tiny_bert
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "[E817]" in again.output
    result = runner.invoke(app, ["debug-data", str(out)])
    assert result.exit_code == 0, result.output
    assert "CAUSES" in result.output and "No blocking problem" in result.output
    # a typo in allowed_pairs: the command names it and exits 1
    typo = json.dumps([["Drugs", "AdverseEvent"]])
    result = runner.invoke(app, ["debug-data", str(out),
                                 "--components.biobert_relations.candidates.allowed_pairs", typo])
    assert result.exit_code == 1 and "[E806]" in result.output and "'Drugs'" in result.output


def test_template_is_shipped_with_the_package():
    from spacy_biobert.training.own_config import TEMPLATE

    assert TEMPLATE.exists()
    setup = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    assert "spacy_biobert = cli/templates/*.cfg" in setup
