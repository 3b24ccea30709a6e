"""The `biobert` precision setting (fp32, bf16, auto): parsing and
validation, CPU detection, bf16 numerics against fp32, fp32 weights on disk,
the fp32 fallback on a CPU without bfloat16 (one warning), training under
bf16, and the annotate / int8 / service paths. bf16 autocast runs (slowly) on
any CPU, so the bf16 numerics run everywhere; detection is monkeypatched."""

import warnings

import numpy
import pytest
import spacy
import srsly
from spacy.training import Example

import spacy_biobert.precision as precision_mod
from spacy_biobert.precision import (
    CpuBf16,
    PrecisionWarning,
    check_precision,
    model_precision,
    parse_cpuinfo,
    pipeline_precision,
    set_precision,
)

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "biobert",
    "pooling": {"@layers": "reduce_mean.v1"},
}
TEXTS = [
    "Cocaine induced acute heart failure in rats .",
    "Lithium causes nephrotoxicity and hypertension in patients with epilepsy .",
    "Aspirin was associated with hypotension .",
]
TRAIN = [
    ("Cocaine induced acute heart failure .", [(0, 7, "Chemical"), (16, 35, "Disease")]),
    ("Lithium causes nephrotoxicity in rats .", [(0, 7, "Chemical"), (15, 29, "Disease")]),
]
EPYC = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
    "flags\t\t: fpu sse sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\n"
)
EPYC_WHY = "neither avx512_bf16 nor amx_bf16 (AMD EPYC 7B13; best vector extension: avx2)"


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_bf16_support", lambda: CpuBf16(True, "test: avx512_bf16"))


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    monkeypatch.setattr(
        precision_mod, "cpu_bf16_support", lambda: CpuBf16(False, "test: no avx512_bf16 nor amx_bf16")
    )


def ner_pipeline(tiny_bert, precision="fp32"):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}, "precision": precision})
    nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    return nlp, examples, optimizer


def ours(record):
    return [w for w in record if w.category is PrecisionWarning]


def codes(record):
    """The codes of the precision warnings recorded (other libraries' warnings left out)."""
    return [str(w.message)[:6] for w in ours(record)]


def autocast_seen(nlp):
    """A list that records, for each forward pass of the biobert encoder,
    whether CPU autocast was on and the dtype of the encoder's first linear
    layer's output."""
    import torch

    hf = nlp.get_pipe("biobert").model.transformer
    seen = []
    hf.encoder.layer[0].attention.self.query.register_forward_hook(
        lambda module, inputs, output: seen.append((torch.is_autocast_enabled("cpu"), output.dtype))
    )
    return seen


def token_vectors(doc):
    """One vector per spaCy token: the mean of its wordpieces' last hidden states."""
    trf = doc._.trf_data
    hidden = numpy.asarray(trf.model_output.last_hidden_state)
    assert hidden.dtype == numpy.float32
    flat = hidden.reshape(-1, hidden.shape[-1])
    out = []
    for i in range(len(doc)):
        idx = trf.align[i].data.ravel()
        out.append(flat[idx].mean(axis=0))
    return numpy.stack(out)


def test_factory_default_is_fp32_and_saved_configs_without_the_setting_load(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    assert nlp.config["components"]["biobert"]["precision"] == "fp32"
    assert model_precision(nlp.get_pipe("biobert").model) == "fp32"
    # A config written before the setting existed: the factory default fills it in.
    config = nlp.config.copy()
    del config["components"]["biobert"]["precision"]
    reloaded = spacy.util.load_model_from_config(config, auto_fill=True)
    assert model_precision(reloaded.get_pipe("biobert").model) == "fp32"


@pytest.mark.parametrize("value", ["fp16", "BF16", ""])
def test_a_bad_precision_is_a_coded_error(tiny_bert, value):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[E030\].*fp32, bf16, auto"):
        nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}, "precision": value})
    with pytest.raises(ValueError, match=r"\[E030\]"):
        check_precision(None)


@pytest.mark.parametrize(
    ("text", "machine", "supported", "evidence"),
    [
        (EPYC, "x86_64", False, EPYC_WHY),
        (EPYC.replace("avx2", "avx2 avx512f avx512_bf16"), "x86_64", True, "avx512_bf16"),
        (EPYC.replace("avx2", "avx2 amx_bf16 amx_tile"), "x86_64", True, "amx_bf16"),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", "aarch64", True, "bf16"),
        ("processor\t: 0\nFeatures\t: fp asimd crc32\n", "aarch64", False, "lack bf16"),
        ("", "ppc64le", False, "x86 and aarch64 only"),
    ],
)
def test_cpu_bf16_detection_reads_the_cpu_flags(text, machine, supported, evidence):
    found = parse_cpuinfo(text, machine)
    assert found.supported is supported
    assert evidence in found.why


def test_auto_runs_bf16_only_where_the_cpu_has_it(tiny_bert, bf16_cpu):
    nlp = spacy.blank("en")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}, "precision": "auto"})
    assert model_precision(nlp.get_pipe("biobert").model) == "bf16"


def test_auto_on_a_cpu_without_bf16_runs_fp32_with_one_warning(tiny_bert, no_bf16_cpu):
    nlp = spacy.blank("en")
    with pytest.warns(PrecisionWarning) as record:
        nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}, "precision": "auto"})
        nlp.initialize()
        list(nlp.pipe(TEXTS))
    assert codes(record) == ["[W001]"]
    assert "no avx512_bf16 nor amx_bf16" in str(ours(record)[0].message)
    assert model_precision(nlp.get_pipe("biobert").model) == "fp32"


def test_bf16_token_vectors_are_close_to_fp32(tiny_bert):
    nlp, _, _ = ner_pipeline(tiny_bert)
    fp32 = [token_vectors(doc) for doc in nlp.pipe(TEXTS)]
    assert set_precision(nlp, "bf16", force=True) == "bf16"
    seen = autocast_seen(nlp)
    bf16 = [token_vectors(doc) for doc in nlp.pipe(TEXTS)]
    assert seen and all(on and dtype == _bfloat16() for on, dtype in seen)
    for a, b in zip(fp32, bf16):
        cos = (a * b).sum(1) / (numpy.linalg.norm(a, axis=1) * numpy.linalg.norm(b, axis=1))
        assert cos.min() >= 0.99, cos
        assert not numpy.array_equal(a, b)  # it did run in bfloat16
    # Back to fp32: the same vectors as before.
    set_precision(nlp, "fp32")
    again = [token_vectors(doc) for doc in nlp.pipe(TEXTS)]
    for a, b in zip(fp32, again):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _bfloat16():
    import torch

    return torch.bfloat16


def _saved_weight_dtypes(path):
    """The dtypes of the transformer weights in a saved pipeline's biobert/model file."""
    import io

    import torch

    msg = srsly.msgpack_loads((path / "biobert" / "model").read_bytes())
    shims = [shim for node_shims in msg["shims"] for shim in node_shims]
    assert len(shims) == 1
    state = torch.load(io.BytesIO(srsly.msgpack_loads(shims[0])["state"]), weights_only=True)
    assert state
    return {str(t.dtype) for t in state.values() if t.is_floating_point()}


def test_a_bf16_pipeline_saves_fp32_weights_and_reloads_as_bf16(tiny_bert, tmp_path, bf16_cpu):
    nlp, examples, optimizer = ner_pipeline(tiny_bert, "bf16")
    for _ in range(2):
        nlp.update(examples, sgd=optimizer)
    before = [token_vectors(doc) for doc in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "nlp")
    assert _saved_weight_dtypes(tmp_path / "nlp") == {"torch.float32"}
    reloaded = spacy.load(tmp_path / "nlp")
    assert reloaded.config["components"]["biobert"]["precision"] == "bf16"
    assert pipeline_precision(reloaded) == "bf16"
    hf = reloaded.get_pipe("biobert").model.transformer
    assert {str(p.dtype) for p in hf.parameters()} == {"torch.float32"}
    after = [token_vectors(doc) for doc in reloaded.pipe(TEXTS)]
    for a, b in zip(before, after):
        numpy.testing.assert_array_equal(a, b)


def test_a_bf16_pipeline_predicts_in_fp32_on_a_cpu_without_bf16_with_one_warning(
    tiny_bert, tmp_path, monkeypatch
):
    monkeypatch.setattr(precision_mod, "cpu_bf16_support", lambda: CpuBf16(True, "test"))
    nlp, examples, optimizer = ner_pipeline(tiny_bert, "bf16")
    nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "nlp")
    set_precision(nlp, "fp32")
    expected = [token_vectors(doc) for doc in nlp.pipe(TEXTS)]
    # Another machine: no bfloat16.
    monkeypatch.setattr(precision_mod, "cpu_bf16_support", lambda: CpuBf16(False, "test: no avx512_bf16"))
    with pytest.warns(PrecisionWarning) as record:
        reloaded = spacy.load(tmp_path / "nlp")
        seen = autocast_seen(reloaded)
        docs = list(reloaded.pipe(TEXTS * 3, batch_size=2))
    assert codes(record) == ["[W002]"]
    assert "[components.biobert] precision" in str(ours(record)[0].message)
    assert "no avx512_bf16" in str(ours(record)[0].message)
    assert pipeline_precision(reloaded) == "fp32"
    assert seen and not any(on for on, _ in seen)
    for a, doc in zip(expected, docs):
        numpy.testing.assert_allclose(a, token_vectors(doc), rtol=1e-5, atol=1e-6)


def test_a_training_step_under_bf16_updates_every_weight_in_fp32(tiny_bert, bf16_cpu):
    import torch

    nlp, examples, optimizer = ner_pipeline(tiny_bert, "bf16")
    hf = nlp.get_pipe("biobert").model.transformer
    seen = autocast_seen(nlp)
    start = {name: p.detach().clone() for name, p in hf.named_parameters()}
    ner_start = nlp.get_pipe("ner").model.get_ref("lower").get_param("W").copy()
    losses = {}
    # The first update reaches only ner's zero-initialised output layer; from
    # the second on the gradient flows back into the transformer.
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, losses=losses)
    assert seen and all(on for on, _ in seen)
    assert all(numpy.isfinite(v) for v in losses.values()) and losses["ner"] > 0
    changed = [name for name, p in hf.named_parameters() if not torch.equal(p, start[name])]
    assert "encoder.layer.0.attention.self.query.weight" in changed
    assert "embeddings.word_embeddings.weight" in changed
    assert {p.dtype for p in hf.parameters()} == {torch.float32}
    assert not numpy.array_equal(ner_start, nlp.get_pipe("ner").model.get_ref("lower").get_param("W"))


def test_replace_listeners_copies_keep_the_precision(tiny_bert, bf16_cpu):
    nlp, _, _ = ner_pipeline(tiny_bert, "bf16")
    nlp.replace_listeners("biobert", "ner", ["model.tok2vec"])
    assert model_precision(nlp.get_pipe("ner").model) == "bf16"
    set_precision(nlp, "fp32")
    assert pipeline_precision(nlp) == "fp32"


def test_int8_runs_fp32_and_excludes_bf16(tiny_bert, tmp_path, bf16_cpu):
    from spacy_biobert.annotate import AnnotateOptions
    from spacy_biobert.annotate.quantize import quantize_pipeline
    from spacy_biobert.annotate.window import load_annotation_pipeline

    src = tmp_path / "in.txt"
    src.write_text(TEXTS[0] + "\n", encoding="utf8")
    nlp, _, _ = ner_pipeline(tiny_bert, "bf16")
    quantize_pipeline(nlp, "int8")
    assert pipeline_precision(nlp) == "fp32"
    assert len(list(nlp.pipe(TEXTS))) == 3  # int8 under bf16 autocast would fail here
    with pytest.raises(ValueError, match=r"\[E031\]"):
        load_annotation_pipeline(nlp, "int8", "bf16")
    with pytest.raises(ValueError, match=r"\[E031\]"):
        AnnotateOptions(quantize="int8", precision="bf16").resolved(src, tmp_path / "out.jsonl")
    with pytest.raises(ValueError, match=r"\[E030\]"):
        AnnotateOptions(precision="half").resolved(src, tmp_path / "out.jsonl")


def test_annotate_precision_sets_the_pipeline_and_is_recorded_for_resume(tiny_bert, tmp_path, no_bf16_cpu):
    from spacy_biobert.annotate import AnnotateOptions, annotate

    nlp, _, _ = ner_pipeline(tiny_bert)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    with pytest.warns(PrecisionWarning) as record:
        stats = annotate(nlp, src, tmp_path / "out.jsonl", precision="auto")
    assert stats.documents == 3
    assert codes(record) == ["[W001]"]
    assert AnnotateOptions(precision="auto").recorded(src)["precision"] == "auto"
    # Progress files written before the option existed still resume.
    assert "precision" not in AnnotateOptions().recorded(src)


def test_the_service_sets_and_reports_the_precision(tiny_bert, bf16_cpu):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spacy_biobert.serve import create_app

    nlp, _, _ = ner_pipeline(tiny_bert)
    client = TestClient(create_app(nlp, precision="bf16"))
    assert client.get("/health").json()["precision"] == "bf16"
    answer = client.post("/annotate", json={"text": TEXTS[0]})
    assert answer.status_code == 200
    with pytest.raises(ValueError, match=r"\[E030\]"):
        create_app(nlp, precision="fp8")


def test_throughput_bench_reports_fp32_bf16_int8_and_the_biobert_shaped_pipeline(tiny_bert, tmp_path):
    """bench/throughput.py on the tiny joint pipeline (ner and relations
    listening, linker), its BioBERT-shaped pipeline made tiny."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tiny_pipelines import save_tiny_joint_pipeline

    model = save_tiny_joint_pipeline(tiny_bert, tmp_path / "joint", steps=1)
    corpus = tmp_path / "joint.pubtator"
    out = tmp_path / "bench.json"
    shape = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "throughput.py"), model,
         str(corpus), "--repeats", "1", "--no-copies", "--output", str(out),
         "--biobert-docs", "2", "--biobert-config", json.dumps(shape)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["precision"]["timed"] == ["fp32", "bf16", "int8"]
    assert set(result["f1"]) >= {"fp32", "bf16", "int8", "bf16_minus_fp32", "int8_minus_fp32"}
    shaped = result["biobert_shaped"]
    assert shaped["config"]["hidden_size"] == 32 and shaped["documents"] == 2
    assert shaped["pipeline"] == result["pipeline"]
    assert set(shaped["words_per_second"]) == {"fp32", "bf16", "int8"}
    assert "BioBERT-shaped pipeline words/s" in res.stdout
