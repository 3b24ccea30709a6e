"""A pipeline folder, its bytes and a base-model folder are data: loading one
never runs code shipped with it and never writes outside it, whatever its
saved settings say (models/safe_loading.py).

Each crafted folder below is what spacy-transformers' HFShim.from_bytes would
act on without our checks: a `tokenization_*.py` file named by an `auto_map`
and `trust_remote_code` among the saved tokenizer options runs the file; a
tokenizer file name with `..` is written outside the temporary folder.
"""
import json
import shutil
import uuid
from pathlib import Path

import pytest
import spacy
import srsly
from tiny_pipelines import save_tiny_ner_pipeline
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.models.base_models import load_pipeline

# Creates MARKER if it is ever imported.
EVIL_CODE = """\
from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import BertTokenizer
class EvilTokenizer(BertTokenizer):
    pass
"""


@pytest.fixture(scope="module")
def saved_pipeline(tiny_bert, tmp_path_factory) -> Path:
    return Path(save_tiny_ner_pipeline(tiny_bert, tmp_path_factory.mktemp("clean") / "model"))


def _copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "crafted"
    shutil.copytree(saved, target)
    return target


def _edit_payload(model_file: Path, edit) -> None:
    """Apply `edit` to the decoded Hugging Face payload of a saved thinc model."""
    msg = srsly.msgpack_loads(model_file.read_bytes())
    node = next(i for i, shims in enumerate(msg["shims"]) if shims)
    payload = srsly.msgpack_loads(msg["shims"][node][0])
    edit(payload)
    msg["shims"][node][0] = srsly.msgpack_dumps(payload)
    model_file.write_bytes(srsly.msgpack_dumps(msg))


def _remote_code(marker: Path):
    def edit(payload):
        tok = payload["tokenizer"]
        tok["tokenization_evil.py"] = EVIL_CODE.format(marker=str(marker)).encode()
        settings = json.loads(tok["tokenizer_config.json"])
        settings["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
        tok["tokenizer_config.json"] = json.dumps(settings).encode()
        tok["kwargs"] = {"use_fast": False, "trust_remote_code": True}

    return edit


def _only(key: str, value):
    """One hostile setting on its own, to show each is refused by itself."""

    def edit(payload):
        if key == "kwargs":
            payload["tokenizer"]["kwargs"] = value
        elif key == "tokenizer_config.json":
            settings = json.loads(payload["tokenizer"][key])
            settings.update(value)
            payload["tokenizer"][key] = json.dumps(settings).encode()
        elif key == "config":
            payload["config"].update(value)
        else:
            payload["tokenizer"][key] = value

    return edit


CRAFTED = {
    "trust_remote_code in the tokenizer options": (
        _only("kwargs", {"use_fast": True, "trust_remote_code": True}), "E007.*trust_remote_code"
    ),
    "an auto_map in tokenizer_config.json": (
        _only("tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["x.Y", None]}}),
        "E007.*auto_map.*tokenizer_config.json",
    ),
    "an auto_map in the model config": (
        _only("config", {"auto_map": {"AutoModel": "modeling_x.X"}}), "E007.*auto_map.*config"
    ),
    "a tokenizer option other than use_fast": (
        _only("kwargs", {"use_fast": True, "cache_dir": "/tmp"}), "E007.*cache_dir"
    ),
    "a code file among the tokenizer files": (
        _only("tokenization_x.py", b"raise SystemExit"), "E008.*tokenization_x.py.*never code"
    ),
    "an absolute file name": (_only("/tmp/x.json", b"{}"), "E008.*not a plain file name"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_transformer_settings_are_refused(case, saved_pipeline, tmp_path):
    edit, message = CRAFTED[case]
    crafted = _copy(saved_pipeline, tmp_path)
    _edit_payload(crafted / "biobert" / "model", edit)
    with pytest.raises(ValueError, match=message):
        spacy.load(crafted)
    with pytest.raises(ValueError, match=message):
        load_pipeline(crafted)


def test_remote_code_pipeline_runs_nothing_on_load_or_annotate(saved_pipeline, tmp_path):
    marker = tmp_path / "REMOTE-CODE-RAN"
    crafted = _copy(saved_pipeline, tmp_path)
    _edit_payload(crafted / "biobert" / "model", _remote_code(marker))
    with pytest.raises(ValueError, match=r"E007.*the component 'biobert'"):
        spacy.load(crafted)
    (tmp_path / "in.txt").write_text("cocaine\n", encoding="utf8")
    for args in (
        ["annotate", str(crafted), str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl")],
        ["render", str(crafted), str(tmp_path / "in.txt"), "--output", str(tmp_path / "o.html")],
        ["show", str(crafted), "--text", "cocaine"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "E007" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_traversing_tokenizer_file_name_writes_nothing_anywhere(saved_pipeline, tmp_path):
    name = f"spacy-biobert-traversal-{uuid.uuid4().hex}.txt"
    # From spacy-transformers' temporary folder (/tmp/tmpXXXX) up to the root.
    traversing = "../" * 12 + "tmp/" + name
    crafted = _copy(saved_pipeline, tmp_path)
    _edit_payload(crafted / "biobert" / "model", _only(traversing, b"written outside"))
    before = sorted(p.name for p in crafted.rglob("*"))
    with pytest.raises(ValueError, match=r"E008.*not a plain file name"):
        spacy.load(crafted)
    assert not (Path("/tmp") / name).exists()
    assert sorted(p.name for p in crafted.rglob("*")) == before


def test_crafted_bytes_are_refused_by_from_bytes(saved_pipeline, tmp_path):
    crafted = _copy(saved_pipeline, tmp_path)
    _edit_payload(crafted / "biobert" / "model", _remote_code(tmp_path / "RAN"))
    nlp = spacy.load(saved_pipeline)
    component = srsly.msgpack_loads(nlp.get_pipe("biobert").to_bytes())
    component["model"] = (crafted / "biobert" / "model").read_bytes()
    with pytest.raises(ValueError, match=r"E007.*the component 'biobert'"):
        nlp.get_pipe("biobert").from_bytes(srsly.msgpack_dumps(component))
    assert not (tmp_path / "RAN").exists()


def test_the_legacy_model_folder_layout_is_refused(saved_pipeline, tmp_path):
    """spacy-transformers loads a v1.0 `model` folder with the pipeline
    config's own tokenizer settings, trust_remote_code included."""
    crafted = _copy(saved_pipeline, tmp_path)
    (crafted / "biobert" / "model").unlink()
    (crafted / "biobert" / "model").mkdir()
    with pytest.raises(ValueError, match="E009"):
        spacy.load(crafted)


def test_spacy_transformers_own_factory_is_checked_by_load_pipeline(saved_pipeline, tmp_path):
    """A crafted config may swap our factory for spacy-transformers' own
    `transformer` (same settings), whose loading we do not control: the CLI's
    loader checks every component folder before spacy.load."""
    crafted = _copy(saved_pipeline, tmp_path)
    config = (crafted / "config.cfg").read_text(encoding="utf8")
    config = config.replace('factory = "biobert"', 'factory = "transformer"')
    config = config.replace(
        '"spacy-biobert.TransformerModel.v1"', '"spacy-transformers.TransformerModel.v3"'
    )
    (crafted / "config.cfg").write_text(config, encoding="utf8")
    _edit_payload(crafted / "biobert" / "model", _remote_code(tmp_path / "RAN"))
    with pytest.raises(ValueError, match=r"E007.*the component 'biobert'"):
        load_pipeline(crafted)
    assert not (tmp_path / "RAN").exists()


def test_a_listener_own_transformer_copy_is_checked(tiny_bert, tmp_path):
    """After replace_listeners, `ner` holds the transformer in its own model;
    that copy loads through the same checked shim."""
    from tiny_pipelines import LISTENER

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    nlp.get_pipe("ner").add_label("Chemical")
    nlp.initialize()
    nlp.replace_listeners("biobert", "ner", ["model.tok2vec"])
    nlp.remove_pipe("biobert")
    nlp.to_disk(tmp_path / "own")
    assert spacy.load(tmp_path / "own").pipe_names == ["ner"]
    _edit_payload(tmp_path / "own" / "ner" / "model", _remote_code(tmp_path / "RAN"))
    with pytest.raises(ValueError, match="E007.*trust_remote_code|E007.*auto_map"):
        spacy.load(tmp_path / "own")
    assert not (tmp_path / "RAN").exists()


@pytest.mark.parametrize(
    "file,content,message",
    [
        ("config.json", {"auto_map": {"AutoModel": "modeling_x.X"}}, "E007.*auto_map.*config.json"),
        ("tokenizer_config.json", {"trust_remote_code": True}, "E007.*trust_remote_code"),
        ("tokenization_x.py", None, "E008.*tokenization_x.py.*code file"),
    ],
)
def test_base_model_folder_asking_for_code_is_refused(tiny_bert, tmp_path, file, content, message):
    folder = tmp_path / "base"
    shutil.copytree(tiny_bert, folder)
    if content is None:
        (folder / file).write_text("raise SystemExit\n", encoding="utf8")
    else:
        settings = json.loads((folder / file).read_text(encoding="utf8"))
        settings.update(content)
        (folder / file).write_text(json.dumps(settings), encoding="utf8")
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": str(folder)}})
    with pytest.raises(ValueError, match=message):
        nlp.initialize()


def test_a_clean_pipeline_loads_through_every_check(saved_pipeline):
    nlp = load_pipeline(saved_pipeline)
    assert nlp.pipe_names == ["biobert", "ner"]
    nlp2 = spacy.blank("en").from_config(nlp.config)
    nlp2.from_bytes(nlp.to_bytes())
    assert nlp2("cocaine").text == "cocaine"
