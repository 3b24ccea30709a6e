"""The README's "Train on your own data" section, run as written: its
command block (init-config, debug-data, train, evaluate, evaluate-relations,
package) and its Python block, on a tiny made-up corpus in brat folders (two
entity labels, one relation). Two values of the init-config line are
swapped for the test's budget: the base model (the tiny random BERT for
minilm-offline) and the steps (40 for 600). The relation F1 must be
nonzero and the model must package."""
import json
import re
import shlex
import tarfile
from pathlib import Path

import pytest
import spacy
from own_data import documents, write_jsonl
from typer.testing import CliRunner

import spacy_biobert  # noqa: F401
from spacy_biobert.cli import app
from spacy_biobert.corpora import read_corpus, write_corpus

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def readme_block(name: str) -> str:
    """The fenced block between <!-- NAME ... --> and <!-- /NAME -->."""
    text = README.read_text(encoding="utf8")
    found = re.search(rf"<!-- {name}\b[^>]*-->\s*```\w*\n(.*?)```\s*<!-- /{name} -->", text, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def quickstart_commands(tiny_bert: str):
    lines = [line for line in readme_block("quickstart").splitlines() if line.strip()]
    init = lines[0]
    assert init.startswith("spacy-biobert init-config ")
    assert "--base-model minilm-offline" in init and "--max-steps 600" in init
    lines[0] = init.replace("minilm-offline", tiny_bert).replace("--max-steps 600", "--max-steps 40")
    return lines


def make_data(root: Path) -> None:
    """A folder of brat files per split, as a user would have them."""
    for split, docs in (("train", documents(16)), ("dev", documents(6, offset=16))):
        jsonl = write_jsonl(root / f"{split}.jsonl", docs)
        write_corpus(read_corpus(jsonl), root / "data" / split, format="brat")
        jsonl.unlink()


def run(line: str, root: Path) -> str:
    args = shlex.split(line)
    if args[:2] == ["mkdir", "-p"]:
        for folder in args[2:]:
            (root / folder).mkdir(parents=True, exist_ok=True)
        return ""
    if args[0] == "spacy-biobert":
        result = runner.invoke(app, args[1:], catch_exceptions=False)
    elif args[:3] == ["python", "-m", "spacy"]:
        from spacy.cli import app as spacy_app

        result = runner.invoke(spacy_app, args[3:], catch_exceptions=False)
    else:
        raise AssertionError(f"the quickstart runs a command the test does not know: {line}")
    assert result.exit_code == 0, f"{line}\n{result.output[-3000:]}"
    return result.output


@pytest.mark.slow
def test_readme_quickstart_trains_relations_and_packages(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_data(tmp_path)
    outputs = {}
    for line in quickstart_commands(tiny_bert):
        outputs[shlex.split(line)[:2][-1]] = run(line, tmp_path)
    assert "No blocking problem" in outputs["debug-data"]
    # the training table has no document-level columns for a mention-level label
    assert "REL_MICRO_F" in outputs["train"] and "REL_DOC" not in outputs["train"]
    scores = json.loads((tmp_path / "metrics" / "my_relations.json").read_text())
    f1 = scores["thresholds"]["0.5"]["rel_micro_f"]
    assert f1 > 0, scores
    (sdist,) = (tmp_path / "packages").glob("en_my_model-0.1.0/dist/en_my_model-0.1.0.tar.gz")
    with tarfile.open(sdist) as tar:
        assert any(name.endswith("biobert_relations/model") for name in tar.getnames())
    # the Python block runs on the trained model
    code = readme_block("quickstart-python")
    exec(compile(code, "README.md (quickstart-python)", "exec"), {})
    nlp = spacy.load(tmp_path / "training" / "my" / "model-best")
    assert nlp.get_pipe("biobert_relations").labels == ("CAUSES",)


def test_readme_first_snippet_initializes_offline(offline_model):
    """The README's first snippet names a base model that loads with no
    network (before, the default hub id failed at initialize with E001)."""
    from spacy.training import Example

    scope = {}
    exec(compile(readme_block("components"), "README.md (components)", "exec"), scope)
    nlp = scope["nlp"]
    doc = nlp.make_doc("Aspirin caused nausea.")
    example = Example.from_dict(doc, {"entities": [(0, 7, "Drug")]})
    nlp.initialize(lambda: [example])
    processed = nlp(doc.text)
    assert nlp.pipe_names == ["biobert", "ner"] and processed._.trf_data is not None
