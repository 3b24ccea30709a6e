"""Domain-adaptive pretraining (`spacy-biobert pretrain`): text input, masking
and NSP statistics, resume equivalence, a model folder the `biobert` factory
loads, errors, and a few steps on the real offline base model (slow)."""

import json
import random
from pathlib import Path

import numpy
import pytest

from spacy_biobert.pretraining import (
    Collator,
    PretrainSettings,
    TextDocument,
    is_heldout,
    iter_documents,
    make_instances,
    pretrain,
    split_sentences,
)
from spacy_biobert.pretraining.data import TokenizedDocument, tokenize_documents
from spacy_biobert.pretraining.examples import IS_NEXT, RANDOM_NEXT

DATA = Path(__file__).parent / "data"
WORDS = (
    "patients induced disease cancer tumor drug dose treatment chemical toxicity heart "
    "failure kidney liver injury acute chronic syndrome cocaine aspirin lithium morphine "
    "naloxone cisplatin protein gene receptor kinase inhibitor expression cells rats mice "
    "hypertension hypotension seizures epilepsy pain nephrotoxicity"
).split()


def write_text_corpus(path: Path, documents: int, seed: int = 0) -> Path:
    """Plain text: documents of 3-8 sentences, separated by blank lines."""
    rng = random.Random(seed)
    docs = []
    for _ in range(documents):
        sents = []
        for _ in range(rng.randint(3, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
            sents.append(words[0].capitalize() + " " + " ".join(words[1:]) + ".")
        docs.append(" ".join(sents))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf8")
    return path


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory) -> Path:
    return write_text_corpus(tmp_path_factory.mktemp("text") / "abstracts.txt", 60)


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def small_settings(**overrides) -> PretrainSettings:
    values = dict(
        max_steps=4, head_warmup_steps=2, batch_size=8, max_length=48, warmup_steps=1,
        checkpoint_every=3, heldout_fraction=0.15, eval_max_examples=40, seed=3,
    )
    values.update(overrides)
    return PretrainSettings(**values)


# --- text in ------------------------------------------------------------------------


def test_split_sentences_keeps_abbreviations_and_initials():
    text = ("Lithium (e.g. in rats) induced injury vs. controls. Fig. 2 shows it. "
            "J. Smith et al. found 3 cases. Doses were 5.5 mg/kg! Was it toxic? (Yes.)")
    assert split_sentences(text) == [
        "Lithium (e.g. in rats) induced injury vs. controls.",
        "Fig. 2 shows it.",
        "J. Smith et al. found 3 cases.",
        "Doses were 5.5 mg/kg!",
        "Was it toxic?",
        "(Yes.)",
    ]
    assert split_sentences("  \n ") == []


def test_plain_text_documents_split_on_blank_lines(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("First doc. Second sentence.\nA line of its own\n\n\n"
                    "Second doc here.\n", encoding="utf8")
    docs = list(iter_documents([path], text_docs="blank-line"))
    assert [d.sentences for d in docs] == [
        ["First doc.", "Second sentence.", "A line of its own"],
        ["Second doc here."],
    ]
    # plain text's one default, as in every command: a document per line
    assert [d.sentences for d in iter_documents([path])] == [
        ["First doc.", "Second sentence."], ["A line of its own"], ["Second doc here."],
    ]


def test_corpus_formats_give_titles_and_abstracts(tmp_path):
    docs = list(iter_documents([DATA / "tiny.pubtator"]))
    assert docs and all(d.sentences for d in docs)
    chemprot = list(iter_documents([DATA / "chemprot_tiny"]))
    assert chemprot and all(len(d.sentences) >= 2 for d in chemprot)
    prefix = next((DATA / "chemprot_tiny").glob("*_abstracts.tsv")).name[: -len("_abstracts.tsv")]
    by_prefix = list(iter_documents([DATA / "chemprot_tiny" / prefix]))
    assert [d.sentences for d in by_prefix] == [d.sentences for d in chemprot]
    # a folder is walked; files of no known format are skipped and reported
    (tmp_path / "a.txt").write_text("One. Two.\n", encoding="utf8")
    (tmp_path / "b.pdf").write_bytes(b"%PDF")
    from spacy_biobert.pretraining import TextStats

    stats = TextStats()
    assert [d.sentences for d in iter_documents([tmp_path], stats=stats)] == [["One.", "Two."]]
    assert stats.skipped_files == [str(tmp_path / "b.pdf")]


def test_heldout_split_is_by_document_content():
    docs = [TextDocument(str(i), [f"Sentence {i}.", "Another one."]) for i in range(2000)]
    held = [d for d in docs if is_heldout(d, 0.1)]
    assert 150 < len(held) < 250
    renamed = [TextDocument("x" + d.id, d.sentences) for d in docs]
    assert [is_heldout(d, 0.1) for d in renamed] == [is_heldout(d, 0.1) for d in docs]


def test_long_sentences_are_cut_not_truncated(tokenizer):
    doc = TextDocument("1", [" ".join(["aspirin"] * 25)])
    [tok], _ = tokenize_documents([doc], tokenizer, max_segment=10)
    assert [len(s) for s in tok.segments] == [10, 10, 5]


# --- masking and NSP ---------------------------------------------------------------------


def _random_instances(tokenizer, n=400, length=60, seed=0):
    from spacy_biobert.pretraining import Instance

    rng = random.Random(seed)
    ids = tokenizer.convert_tokens_to_ids(WORDS)
    out = []
    for _ in range(n):
        body = [rng.choice(ids) for _ in range(rng.randint(length // 2, length))]
        out.append(Instance([tokenizer.cls_token_id] + body + [tokenizer.sep_token_id],
                            [0] * (len(body) + 2)))
    return out


def test_masking_is_15_percent_with_80_10_10(tokenizer):
    collator = Collator(tokenizer, mlm_probability=0.15, whole_word=False, seed=0)
    instances = _random_instances(tokenizer)
    masked = replaced = kept = total = 0
    for i in range(0, len(instances), 50):
        chunk = instances[i : i + 50]
        batch = collator(chunk)
        for row, inst in enumerate(chunk):
            original = numpy.array(inst.input_ids)
            n = len(original)
            labels = batch["labels"][row].numpy()
            inputs = batch["input_ids"][row].numpy()
            assert (labels[n:] == -100).all(), "padding is never a target"
            assert labels[0] == -100 and labels[n - 1] == -100, "[CLS]/[SEP] never masked"
            sel = labels[:n] != -100
            assert (labels[:n][sel] == original[sel]).all()
            total += n - 2
            masked += sel.sum()
            replaced += (inputs[:n][sel] == tokenizer.mask_token_id).sum()
            kept += (inputs[:n][sel] == original[sel]).sum()
            assert (inputs[:n][~sel] == original[~sel]).all()
    assert 0.14 < masked / total < 0.16
    assert 0.78 < replaced / masked < 0.82
    # "unchanged" is 10% plus the random draws that hit the same token
    assert 0.08 < kept / masked < 0.12
    assert 0.08 < (masked - replaced - kept) / masked < 0.12


def test_whole_word_masking_keeps_word_pieces_together(tokenizer):
    collator = Collator(tokenizer, mlm_probability=0.15, whole_word=True, seed=1)
    # in-vocabulary words and short words the tiny vocab splits into 2-3 pieces
    rng = random.Random(0)
    text = " ".join(
        rng.choice(WORDS) if i % 2 else "".join(rng.choice("bdfgkmpqxz") for _ in range(rng.randint(2, 3)))
        for i in range(60)
    )
    pieces = tokenizer(text)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(pieces)
    assert sum(t.startswith("##") for t in tokens) > 30
    from spacy_biobert.pretraining import Instance

    inst = Instance(pieces, [0] * len(pieces))
    words = []
    for i, t in enumerate(tokens[1:-1], 1):
        if t.startswith("##"):
            words[-1].append(i)
        else:
            words.append([i])
    seen_partial = seen_whole = 0
    for _ in range(300):
        labels = collator([inst])["labels"][0].numpy()
        for word in words:
            chosen = [labels[i] != -100 for i in word]
            assert all(chosen) or not any(chosen), (tokens, word, labels)
            seen_whole += all(chosen) and len(word) > 1
            seen_partial += any(chosen)
    assert seen_whole > 0 and seen_partial > 0


def _docs_with_own_ids(n_docs, rng):
    """Documents whose wordpiece ids lie in a range of their own (doc k: 1000k...)."""
    docs = []
    for k in range(n_docs):
        segs = [[1000 * k + rng.randrange(1000) for _ in range(rng.randint(3, 15))]
                for _ in range(rng.randint(1, 9))]
        ids = numpy.array([t for s in segs for t in s], dtype=numpy.int32)
        docs.append(TokenizedDocument(ids, numpy.cumsum([0] + [len(s) for s in segs])))
    return docs


def test_nsp_is_50_50_and_pairs_are_true_or_from_another_document():
    rng = random.Random(0)
    docs = _docs_with_own_ids(400, rng)
    instances = []
    for epoch in range(10):
        instances += make_instances(docs, random.Random(epoch), max_length=64, nsp=True,
                                    short_seq_prob=0.1, cls_id=1, sep_id=2)
    labels = [x.next_sentence_label for x in instances]
    assert len(labels) > 5000
    assert 0.48 < labels.count(RANDOM_NEXT) / len(labels) < 0.52
    for x in instances:
        assert len(x.input_ids) <= 64 and x.input_ids[0] == 1 and x.input_ids[-1] == 2
        sep = x.input_ids.index(2)
        a, b = x.input_ids[1:sep], x.input_ids[sep + 1 : -1]
        assert a and b
        assert x.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        same_doc = a[0] // 1000 == b[0] // 1000
        assert all(t // 1000 == a[0] // 1000 for t in a)
        assert all(t // 1000 == b[0] // 1000 for t in b)
        assert same_doc == (x.next_sentence_label == IS_NEXT)
        if x.next_sentence_label == IS_NEXT:
            # A then B is a contiguous stretch of the document (up to truncated ends)
            doc = docs[a[0] // 1000].ids.tolist()
            if len(a) + len(b) < 61:
                n = len(a) + len(b)
                assert any(doc[i : i + n] == a + b for i in range(len(doc) - n + 1))


def test_mlm_only_instances_pack_whole_sentences():
    rng = random.Random(1)
    docs = _docs_with_own_ids(50, rng)
    instances = make_instances(docs, random.Random(0), max_length=40, nsp=False,
                               short_seq_prob=0.0, cls_id=1, sep_id=2)
    total = sum(len(x.input_ids) - 2 for x in instances)
    assert total == sum(len(d.ids) for d in docs), "no wordpiece is lost"
    assert all(x.next_sentence_label is None and set(x.token_type_ids) == {0} for x in instances)


# --- the loop -------------------------------------------------------------------------


def _tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def test_pretrain_writes_a_model_the_biobert_factory_loads(tiny_bert, text_corpus, tmp_path):
    import spacy

    out = tmp_path / "adapted"
    result = pretrain([text_corpus], out, tiny_bert, small_settings())
    assert result.steps == 6
    assert (out / "model.safetensors").exists() and (out / "vocab.txt").exists()
    assert not (out / "checkpoint").exists()
    metrics = json.loads((out / "pretraining_metrics.json").read_text())
    assert set(metrics["heldout"]) == {"before", "after_head_warmup", "after"}
    assert "cls.seq_relationship.weight" in metrics["initialized_heads"]
    for when in metrics["heldout"].values():
        assert when["masked_tokens"] > 0 and 0 <= when["nsp_accuracy"] <= 1
    # the decoder is tied to the word embeddings
    from transformers import BertForPreTraining

    model = BertForPreTraining.from_pretrained(str(out))
    assert model.cls.predictions.decoder.weight.data_ptr() == \
        model.bert.embeddings.word_embeddings.weight.data_ptr()

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": str(out)}})
    nlp.initialize()
    doc = nlp("Cisplatin induced nephrotoxicity in rats.")
    assert doc._.trf_data.tensors[0].shape[-1] == 32
    # the encoder weights changed
    base, adapted = _tensors(tiny_bert), _tensors(out)
    key = "encoder.layer.0.attention.self.query.weight"
    assert not numpy.allclose(base[key].numpy(), adapted["bert." + key].numpy())
    # ... and they are what the factory's loader reads (heads ignored, no re-initialization)
    from spacy_biobert.models.base_models import load_hf_objects

    hf = load_hf_objects(str(out), {"use_fast": True}, {})
    loaded = hf.transformer.state_dict()
    for name, value in loaded.items():
        if "bert." + name in adapted:
            assert numpy.array_equal(value.cpu().numpy(), adapted["bert." + name].numpy()), name


def test_head_warmup_leaves_the_encoder_alone(tiny_bert, text_corpus, tmp_path):
    out = tmp_path / "warm"
    pretrain([text_corpus], out, tiny_bert, small_settings(max_steps=0, head_warmup_steps=3))
    base, adapted = _tensors(tiny_bert), _tensors(out)
    for key, value in base.items():
        if key in ("embeddings.position_ids",):
            continue
        assert numpy.array_equal(value.numpy(), adapted["bert." + key].numpy()), key
    assert "cls.predictions.transform.dense.weight" in adapted


class Killed(Exception):
    pass


@pytest.mark.parametrize("objective,whole_word", [("mlm+nsp", False), ("mlm", True)])
def test_resume_gives_the_same_model(tiny_bert, text_corpus, tmp_path, objective, whole_word):
    settings = small_settings(objective=objective, whole_word_mask=whole_word,
                              max_steps=12, head_warmup_steps=2, checkpoint_every=5)
    straight = pretrain([text_corpus], tmp_path / "straight", tiny_bert, settings)

    def kill_after_checkpoint(event, info):
        if event == "step" and info["step"] == 8:  # checkpoint at 5, killed at 8
            raise Killed()

    with pytest.raises(Killed):
        pretrain([text_corpus], tmp_path / "resumed", tiny_bert, settings,
                 progress=kill_after_checkpoint)
    assert (tmp_path / "resumed" / "checkpoint").exists()
    with pytest.raises(ValueError, match="E609"):
        pretrain([text_corpus], tmp_path / "resumed", tiny_bert, settings)
    resumed = pretrain([text_corpus], tmp_path / "resumed", tiny_bert, settings, resume=True)
    assert resumed.steps == straight.steps == 14
    a, b = _tensors(tmp_path / "straight"), _tensors(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert numpy.array_equal(a[key].numpy(), b[key].numpy()), key
    assert straight.metrics["heldout"] == resumed.metrics["heldout"]


def test_resume_refuses_other_settings_or_missing_checkpoint(tiny_bert, text_corpus, tmp_path):
    settings = small_settings(max_steps=6, checkpoint_every=2, keep_checkpoint=True)
    pretrain([text_corpus], tmp_path / "run", tiny_bert, settings)
    with pytest.raises(ValueError, match=r"E608.*settings"):
        pretrain([text_corpus], tmp_path / "run", tiny_bert,
                 small_settings(max_steps=6, checkpoint_every=2, keep_checkpoint=True, seed=9),
                 resume=True)
    with pytest.raises(ValueError, match="E607"):
        pretrain([text_corpus], tmp_path / "nothing", tiny_bert, settings, resume=True)


def test_errors_are_clear(tiny_bert, text_corpus, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf8")
    with pytest.raises(ValueError, match="E601"):
        pretrain([empty], tmp_path / "o1", tiny_bert, small_settings())
    with pytest.raises(FileNotFoundError, match="E602"):
        pretrain([tmp_path / "missing.txt"], tmp_path / "o2", tiny_bert, small_settings())
    odd = tmp_path / "data.docx"
    odd.write_bytes(b"PK")
    with pytest.raises(ValueError, match="E603"):
        pretrain([odd], tmp_path / "o3", tiny_bert, small_settings())
    with pytest.raises(OSError, match="E604"):
        pretrain([text_corpus], tmp_path / "o4", "no-such/model-anywhere", small_settings())
    with pytest.raises(ValueError, match="E004"):
        pretrain([text_corpus], tmp_path / "o5", str(tmp_path), small_settings())
    with pytest.raises(ValueError, match="E606.*objective"):
        PretrainSettings.from_dict({"objective": "nsp"})
    with pytest.raises(ValueError, match="E606.*not a setting"):
        PretrainSettings.from_dict({"max_stepz": 3})
    one = tmp_path / "one.txt"
    one.write_text("Only one document. With two sentences.\n", encoding="utf8")
    with pytest.raises(ValueError, match="E610"):
        pretrain([one], tmp_path / "o6", tiny_bert, small_settings())


def test_cli_reports_before_and_after(tiny_bert, text_corpus, tmp_path):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    out, metrics = tmp_path / "cli", tmp_path / "m" / "pretrain.json"
    cfg = Path(__file__).resolve().parents[1] / "configs" / "pretrain" / "mlm_nsp.cfg"
    args = ["pretrain", str(text_corpus), "--output", str(out), "--base-model", tiny_bert,
            "--config", str(cfg), "--max-steps", "2", "--head-warmup-steps", "1",
            "--batch-size", "4", "--max-length", "32", "--objective", "mlm",
            "--metrics", str(metrics)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "after" in result.output and "Pretrained 3 steps" in result.output
    data = json.loads(metrics.read_text())
    assert data["objective"] == "mlm" and data["settings"]["learn_rate"] == 0.0001
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "E609" in again.output


@pytest.mark.slow
def test_a_few_steps_on_the_offline_base_model(offline_model, corpora_dir, tmp_path):
    """Heads initialized anew, a short head warm-up brings held-out MLM loss down."""
    settings = PretrainSettings(max_steps=2, head_warmup_steps=4, batch_size=8, max_length=64,
                                warmup_steps=1, heldout_fraction=0.2, eval_max_examples=32,
                                checkpoint_every=3)
    out = tmp_path / "minilm"
    result = pretrain([corpora_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt"], out,
                      "minilm-offline", settings)
    held = result.metrics["heldout"]
    assert held["after_head_warmup"]["mlm_loss"] < held["before"]["mlm_loss"]
    assert "cls.predictions.transform.dense.weight" in result.metrics["initialized_heads"]
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": str(out)}})
    nlp.initialize()
    assert nlp("Cisplatin nephrotoxicity.")._.trf_data.tensors[0].shape[-1] == 384


def test_pretraining_refuses_a_base_model_folder_asking_for_code(tiny_bert, text_corpus, tmp_path):
    """The same rules as the `biobert` factory's base models (safe_loading)."""
    import json
    import shutil

    folder = tmp_path / "base"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf8"))
    config["auto_map"] = {"AutoModel": "modeling_x.X"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf8")
    with pytest.raises(ValueError, match="E007.*auto_map"):
        pretrain([text_corpus], tmp_path / "out", str(folder), small_settings())
