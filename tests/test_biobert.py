"""The `biobert` transformer factory: offline construction, model resolution,
long documents, safe loading and clear errors."""
import warnings

import numpy
import pytest
import spacy

from spacy_biobert.models import DEFAULT_MODEL_NAME, resolve_model_name
from spacy_biobert.models.base_models import load_hf_objects


def make_nlp(model_name: str):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": model_name}})
    return nlp


def test_add_pipe_needs_no_arguments_and_no_network():
    nlp = spacy.blank("en")
    trf = nlp.add_pipe("biobert")
    assert trf.model.attrs["name"] == DEFAULT_MODEL_NAME
    # Weights load at initialize, never at add_pipe.
    assert trf.model.attrs["has_transformer"] is False


def test_initialize_from_local_folder_sets_trf_data(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.initialize()
    doc = nlp("Cocaine-induced acute heart failure in rats.")
    trf_data = doc._.trf_data
    assert trf_data.tensors[0].shape[-1] == 32
    assert len(trf_data.align) == len(doc)


def test_empty_doc(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.initialize()
    doc = nlp("")
    assert len(doc) == 0


def test_every_token_of_a_5000_token_document_gets_a_vector(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.initialize()
    text = "Lithium toxicity caused acute kidney injury in patients ( n = 12 ) . " * 385
    doc = nlp.make_doc(text)
    assert len(doc) >= 5000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a tokenizer truncation warning
        doc = nlp(text)
    lengths = doc._.trf_data.align.lengths
    assert len(lengths) == len(doc)
    # Every token that is not whitespace is aligned to at least one wordpiece.
    assert all(n > 0 for token, n in zip(doc, lengths) if not token.is_space)


def test_a_window_of_more_wordpieces_than_positions_is_truncated_not_fatal(tiny_bert, tmp_path):
    # The tiny vocab spells unknown words letter by letter: 128 tokens of a
    # protein sequence are thousands of wordpieces, far over 512 positions.
    nlp = make_nlp(tiny_bert)
    nlp.initialize()
    assert nlp.get_pipe("biobert").model.tokenizer.model_max_length == 512
    sequence = " ".join(["MSKGEELFTGVVPILVELDGDVNGHKFSVSG"] * 200)
    doc = nlp(sequence)
    assert doc._.trf_data.tensors[0].shape[1] <= 512
    # The limit travels with the saved pipeline.
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    assert nlp2.get_pipe("biobert").model.tokenizer.model_max_length == 512
    assert len(nlp2(sequence)) == len(doc)


def test_aliases_resolve():
    assert resolve_model_name("biobert-v1.2") == ("dmis-lab/biobert-base-cased-v1.2", True)
    assert resolve_model_name("biobert-v1.1") == ("dmis-lab/biobert-v1.1", True)
    assert resolve_model_name("pubmedbert")[1] is False
    # A full BioBERT hub id keeps its casing rule; an unknown id is left alone.
    assert resolve_model_name(DEFAULT_MODEL_NAME) == (DEFAULT_MODEL_NAME, True)
    assert resolve_model_name("someone/some-model") == ("someone/some-model", None)


def test_local_folder_resolves_to_absolute_path(tiny_bert):
    source, cased = resolve_model_name(tiny_bert)
    assert source == tiny_bert and cased is None


def test_unknown_model_fails_at_initialize_with_one_clear_error():
    nlp = make_nlp("no-such-org/no-such-biobert")
    with pytest.raises(OSError, match=r"E001.*no-such-org/no-such-biobert.*local folder") as info:
        nlp.initialize()
    # No chained download trace.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_folder_without_config_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    nlp = make_nlp(str(tmp_path))
    with pytest.raises(ValueError, match="E004.*config.json"):
        nlp.initialize()


def test_remote_code_is_refused(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "biobert",
        config={"model": {"name": tiny_bert, "transformer_config": {"trust_remote_code": True}}},
    )
    with pytest.raises(ValueError, match="E003.*trust_remote_code"):
        nlp.initialize()


def test_cased_models_keep_case(tiny_bert, monkeypatch):
    """A cased alias gets do_lower_case=False unless the user set it."""
    from spacy_biobert.models import base_models

    monkeypatch.setitem(
        base_models.KNOWN_MODELS, "tiny-cased", base_models.KnownModel(tiny_bert, cased=True)
    )
    hf = load_hf_objects("tiny-cased", {"use_fast": True}, {})
    assert hf.tokenizer.do_lower_case is False
    hf = load_hf_objects(tiny_bert, {"use_fast": True}, {})
    assert hf.tokenizer.do_lower_case is True


def test_safetensors_preferred(tiny_bert, tmp_path):
    """With both weight files present, the safetensors weights are the ones loaded."""
    import shutil

    import torch
    from transformers import BertModel

    folder = tmp_path / "both"
    shutil.copytree(tiny_bert, folder)
    other = BertModel.from_pretrained(str(folder))
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    torch.save(other.state_dict(), folder / "pytorch_model.bin")
    hf = load_hf_objects(str(folder), {"use_fast": True}, {})
    expected = BertModel.from_pretrained(tiny_bert, use_safetensors=True)
    got = hf.transformer.embeddings.word_embeddings.weight.detach().numpy()
    want = expected.embeddings.word_embeddings.weight.detach().numpy()
    numpy.testing.assert_allclose(got, want)


@pytest.mark.slow
def test_real_offline_base_model(offline_model):
    nlp = make_nlp("minilm-offline")
    nlp.initialize()
    doc = nlp("Naloxone reverses the antihypertensive effect of clonidine.")
    assert doc._.trf_data.tensors[0].shape[-1] == 384
    assert all(n > 0 for n in doc._.trf_data.align.lengths)


def test_default_config_names_the_default_base_model():
    """The default base model is spelled once in Python (`DEFAULT_MODEL_NAME`);
    the factory's DEFAULT_CONFIG string (a config cannot import) must agree."""
    from thinc.api import Config

    from spacy_biobert.models.base_models import DEFAULT_MODEL_NAME, KNOWN_MODELS
    from spacy_biobert.pipeline.transformer import DEFAULT_CONFIG

    assert Config().from_str(DEFAULT_CONFIG)["biobert"]["model"]["name"] == DEFAULT_MODEL_NAME
    assert KNOWN_MODELS["biobert-v1.2"].source == DEFAULT_MODEL_NAME
