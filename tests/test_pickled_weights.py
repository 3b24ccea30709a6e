"""Pickled weights are refused with E005, as the README promises, wherever
they are: in a base-model folder (transformers wraps torch's refusal in an
OSError, which used to read as E001 "could not be loaded from the hub"), and
in a saved pipeline shown with `show` (one line, not a traceback). Nothing in
the pickle runs."""

import io
from pathlib import Path

import pytest
import spacy
from tiny_pipelines import save_tiny_ner_pipeline
from typer.testing import CliRunner

from spacy_biobert.cli import app

pytest.importorskip("torch")


class _Payload:
    """Pickled as open(MARKER, "w"): creates MARKER if ever unpickled."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_bytes(marker: Path) -> bytes:
    import torch

    payload = _Payload()
    payload.marker = str(marker)
    buf = io.BytesIO()
    torch.save({"embeddings.word_embeddings.weight": payload}, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pickled_base_model(tmp_path_factory):
    from conftest import write_tiny_bert

    folder = tmp_path_factory.mktemp("pickled-base")
    base = write_tiny_bert(folder / "bert")
    for weights in base.glob("*.safetensors"):
        weights.unlink()
    marker = folder / "PAYLOAD-RAN"
    (base / "pytorch_model.bin").write_bytes(_pickle_bytes(marker))
    return base, marker


def test_a_pickle_in_a_base_model_folder_is_e005(pickled_base_model):
    from spacy_biobert.models.base_models import load_hf_objects

    base, marker = pickled_base_model
    with pytest.raises(OSError, match=r"^\[E005\] .*the base model .*Unsupported global") as info:
        load_hf_objects(str(base), {}, {})
    assert "E001" not in str(info.value) and "hub" not in str(info.value)
    assert not marker.exists()


def test_a_pickle_in_a_base_model_folder_is_e005_at_initialize(pickled_base_model):
    base, marker = pickled_base_model
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": str(base)}})
    with pytest.raises(OSError, match=r"E005"):
        nlp.initialize()
    assert not marker.exists()


def test_show_reports_refused_weights_in_one_line(tiny_bert, tmp_path):
    import srsly

    model = Path(save_tiny_ner_pipeline(tiny_bert, tmp_path / "model"))
    marker = tmp_path / "PAYLOAD-RAN"
    path = model / "biobert" / "model"
    msg = srsly.msgpack_loads(path.read_bytes())
    node = next(i for i, shims in enumerate(msg["shims"]) if shims)
    shim = srsly.msgpack_loads(msg["shims"][node][0])
    shim["state"] = _pickle_bytes(marker)
    msg["shims"][node][0] = srsly.msgpack_dumps(shim)
    path.write_bytes(srsly.msgpack_dumps(msg))
    res = CliRunner().invoke(app, ["show", str(model), "--text", "cocaine"])
    assert res.exit_code == 1 and "E005" in res.output, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    assert not marker.exists()
    missing = CliRunner().invoke(app, ["show", str(tmp_path / "nope"), "--text", "x"])
    assert missing.exit_code == 1 and isinstance(missing.exception, SystemExit)


def test_pretraining_refuses_a_pickled_base_model_with_the_factorys_e005(pickled_base_model):
    """One guarded loader: `pretrain`'s model loading refuses the same folder
    with the same coded error as the `biobert` factory, and runs nothing."""
    from spacy_biobert.models.base_models import load_hf_objects
    from spacy_biobert.pretraining.loop import load_pretraining_model

    base, marker = pickled_base_model
    with pytest.raises(OSError) as factory:
        load_hf_objects(str(base), {}, {})
    with pytest.raises(OSError, match=r"^\[E005\] .*the base model .*Unsupported global") as pretraining:
        load_pretraining_model(str(base), "mlm+nsp")
    assert str(pretraining.value) == str(factory.value)
    assert "E604" not in str(pretraining.value)
    assert not marker.exists()
