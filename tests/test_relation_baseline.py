"""bench/relation_baseline.py (issue 28): the plain-transformers ChemProt
baseline anonymises the config's candidate pairs, trains, and puts its
predictions where the project's relation scorer reads them."""

import importlib.util
import json
from pathlib import Path

import numpy
import pytest

from spacy_biobert.extensions import mention_relations

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location(
        "relation_baseline", ROOT / "bench" / "relation_baseline.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rb = _load_bench()

# PMID, title, abstract; entities as (id, type, start, end, text); relations as
# (group, eval flag, name, arg1, arg2). Offsets into title + TAB + abstract.
DOCS = [
    (
        "100",
        "Aspirin inhibits COX-2 kinase.",
        "Acyl-CoA synthetase is activated by β-estradiol; KATP channels bind aspirin.",
        [
            ("T1", "CHEMICAL", 0, 7, "Aspirin"),
            ("T2", "GENE-Y", 17, 22, "COX-2"),
            ("T3", "GENE-N", 17, 29, "COX-2 kinase"),
            ("T4", "CHEMICAL", 31, 39, "Acyl-CoA"),  # inside T5: a nested pair
            ("T5", "GENE-N", 31, 50, "Acyl-CoA synthetase"),
            ("T6", "CHEMICAL", 67, 78, "β-estradiol"),
            ("T7", "GENE-Y", 80, 93, "KATP channels"),
            ("T8", "GENE-N", 80, 84, "KATP"),  # inside T7, paired with others
            ("T9", "CHEMICAL", 99, 106, "aspirin"),
        ],
        [
            ("CPR:4", "Y ", "INHIBITOR", "T1", "T2"),
            ("CPR:4", "Y ", "INHIBITOR", "T1", "T3"),
            ("CPR:3", "Y ", "ACTIVATOR", "T6", "T5"),
            ("CPR:1", "N ", "PART-OF", "T4", "T5"),  # not evaluated: a negative
        ],
    ),
    (
        "200",
        "Second doc without relations.",
        "Caffeine is here.",
        [("T1", "CHEMICAL", 30, 38, "Caffeine")],
        [],
    ),
    (
        "300",
        "Dopamine beta hydroxylase binds tyrosine.",
        "No genes here.",
        [
            ("T1", "CHEMICAL", 0, 13, "Dopamine beta"),  # crosses T2: overlap
            ("T2", "GENE-N", 9, 25, "beta hydroxylase"),
            ("T3", "CHEMICAL", 32, 40, "tyrosine"),
        ],
        [("CPR:9", "Y ", "SUBSTRATE", "T3", "T2")],
    ),
    (
        "400",
        "Imatinib blocks KIT.",
        "Imatinib is a drug. ABL1 is a kinase.",
        [
            ("T1", "CHEMICAL", 0, 8, "Imatinib"),
            ("T2", "GENE-Y", 16, 19, "KIT"),
            ("T3", "CHEMICAL", 21, 29, "Imatinib"),
            ("T4", "GENE-Y", 41, 45, "ABL1"),
        ],
        # The second spans two sentences: no candidate reaches it.
        [("CPR:4", "Y ", "INHIBITOR", "T1", "T2"), ("CPR:4", "Y ", "INHIBITOR", "T3", "T4")],
    ),
]


def write_chemprot_split(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = folder.name
    lines = {s: [] for s in ("abstracts", "entities", "relations", "gold_standard")}
    for pmid, title, abstract, entities, relations in DOCS:
        text = title + "\t" + abstract
        lines["abstracts"].append(f"{pmid}\t{title}\t{abstract}")
        for tid, typ, start, end, mention in entities:
            assert text[start:end] == mention, (pmid, tid)
            lines["entities"].append(f"{pmid}\t{tid}\t{typ}\t{start}\t{end}\t{mention}")
        for group, flag, rel, a1, a2 in relations:
            lines["relations"].append(f"{pmid}\t{group}\t{flag}\t{rel}\tArg1:{a1}\tArg2:{a2}")
            if flag == "Y ":
                lines["gold_standard"].append(f"{pmid}\t{group}\tArg1:{a1}\tArg2:{a2}")
    for suffix, rows in lines.items():
        (folder / f"{name}_{suffix}.tsv").write_text("\n".join(rows) + "\n", encoding="utf8")
    return folder


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return write_chemprot_split(tmp_path_factory.mktemp("chemprot") / "tiny_training")


@pytest.fixture(scope="module")
def paired(split):
    config = rb.load_config(rb.DEFAULT_CONFIG)
    docs = rb.read_docs(str(split), rb.make_nlp(config))
    pairs, counts = rb.build_pairs(docs, rb.make_candidates(config))
    return docs, pairs, counts


def by_text(pairs):
    return {(p.head.text, p.tail.text): p for p in pairs}


def test_candidates_and_skips_are_counted(paired):
    docs, pairs, counts = paired
    assert [d._.doc_id for d in docs] == ["100", "200", "300", "400"]
    # doc 100: 2 pairs in the title, 3 chemicals x 3 genes in the abstract (the
    # two KATP spans, GENE-N T8 and GENE-Y T7, are different spans); doc 300: 2;
    # doc 400: 1 (Imatinib and ABL1 are in different sentences).
    assert counts["candidates"] == 2 + 9 + 2 + 1 == len(pairs)
    assert counts["skipped"] == {"nested": 1, "overlap": 1}
    assert counts["pairs_used"] == 12
    assert counts["docs_with_candidates"] == 3
    assert counts["gold_relations"] == 6
    assert counts["gold_on_candidates"] == 5  # all but the cross-sentence one
    assert counts["gold_on_skipped_pairs"] == 0
    pairs_ = by_text(pairs)
    assert pairs_[("Acyl-CoA", "Acyl-CoA synthetase")].skipped == "nested"
    assert pairs_[("Dopamine beta", "beta hydroxylase")].skipped == "overlap"
    assert pairs_[("Acyl-CoA", "Acyl-CoA synthetase")].label == "false"  # CPR:1
    assert pairs_[("β-estradiol", "Acyl-CoA synthetase")].label == "CPR:3"
    assert pairs_[("Aspirin", "COX-2 kinase")].label == "CPR:4"
    assert pairs_[("tyrosine", "beta hydroxylase")].label == "CPR:9"
    assert pairs_[("aspirin", "KATP")].label == "false"


ACYL = "Acyl-CoA synthetase is activated by"


def test_markers_replace_exactly_the_pair(paired):
    _, pairs, _ = paired
    pairs_ = by_text(pairs)
    expected = {
        ("Aspirin", "COX-2"): "@CHEMICAL$ inhibits @GENE$ kinase.",
        ("Aspirin", "COX-2 kinase"): "@CHEMICAL$ inhibits @GENE$.",
        # The gene after the chemical in the text; a gene nested in a longer
        # mention (KATP in KATP channels) that is not in the pair stays text.
        ("β-estradiol", "Acyl-CoA synthetase"): (
            "@GENE$ is activated by @CHEMICAL$; KATP channels bind aspirin."
        ),
        ("aspirin", "KATP"): f"{ACYL} β-estradiol; @GENE$ channels bind @CHEMICAL$.",
        ("aspirin", "KATP channels"): f"{ACYL} β-estradiol; @GENE$ bind @CHEMICAL$.",
        ("Acyl-CoA", "KATP channels"): (
            "@CHEMICAL$ synthetase is activated by β-estradiol; @GENE$ bind aspirin."
        ),
        # The chemical's neighbour that overlaps another mention is plain text.
        ("tyrosine", "beta hydroxylase"): "Dopamine @GENE$ binds @CHEMICAL$.",
        ("Imatinib", "KIT"): "@CHEMICAL$ blocks @GENE$.",
    }
    for key, text in expected.items():
        pair = pairs_[key]
        assert pair.text == text, key
        (hs, he), (ts, te) = pair.markers
        assert text[hs:he] == "@CHEMICAL$" and text[ts:te] == "@GENE$"
    skipped = [p for p in pairs if p.skipped]
    assert all(p.text is None for p in skipped)


def test_overlap_reason():
    assert rb.overlap_reason((0, 5), (5, 9)) is None
    assert rb.overlap_reason((0, 5), (1, 3)) == "nested"
    assert rb.overlap_reason((1, 3), (0, 5)) == "nested"
    assert rb.overlap_reason((0, 5), (0, 5)) == "nested"
    assert rb.overlap_reason((0, 5), (3, 9)) == "overlap"


@pytest.mark.parametrize("group", [True, False])
def test_a_pass_sees_every_pair_once(group):
    import random

    lengths = [random.Random(i).randint(5, 120) for i in range(1000)]
    batches = rb.pass_batches(lengths, 32, random.Random(0), group)
    assert len(batches) == 32  # ceil(1000 / 32)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)


def test_long_sentence_keeps_both_markers(tiny_bert):
    tokenizer, _, _ = rb.load_model(tiny_bert)
    text = "the " * 40 + "@CHEMICAL$ binds @GENE$" + " the" * 40
    start = text.index("@CHEMICAL$")
    markers = ((start, start + 10), (text.index("@GENE$"), text.index("@GENE$") + 6))
    ids, how = rb.encode(tokenizer, text, markers, max_length=16)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert how == "window" and len(ids) == 16
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert "chemical" in pieces and "gene" in pieces
    ids, how = rb.encode(tokenizer, "@CHEMICAL$ binds @GENE$", markers[:0], max_length=16)
    assert how == "whole"


def test_special_marker_tokens(tiny_bert):
    tokenizer, model, _ = rb.load_model(tiny_bert, marker_tokens="special")
    pieces = tokenizer.tokenize("@CHEMICAL$ binds @GENE$.")
    assert pieces[0] == "@CHEMICAL$" and "@GENE$" in pieces
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_predictions_land_where_the_scorer_reads_them(paired):
    docs, pairs, _ = paired
    used = [p for p in pairs if p.skipped is None]
    oracle = numpy.zeros((len(used), len(rb.CLASSES)), dtype="float32")
    for i, pair in enumerate(used):
        oracle[i, rb.CLASSES.index(pair.label)] = 0.9
        oracle[i, 0 if pair.label != "false" else 1] += 0.1
    for mode, threshold in (("argmax", 0.5), ("probability", 0.5)):
        examples = rb.annotate(docs, pairs, oracle, mode)
        scores = rb.score(examples, threshold)
        assert scores["rel_micro_p"] == 1.0, mode
        assert scores["rel_micro_r"] == pytest.approx(5 / 6), mode  # the cross-sentence one
        assert set(scores["rel_micro_per_type"]) == set(rb.EVAL_LABELS)
    doc = examples[0].predicted
    assert len(doc._.relation_pairs) == 11  # every candidate, the skipped one too
    nested = by_text(pairs)[("Acyl-CoA", "Acyl-CoA synthetase")]
    skipped = [
        s for h, t, s in doc._.relation_pairs
        if (h[:2], t[:2]) == ((nested.head.start, nested.head.end), (nested.tail.start, nested.tail.end))
    ]
    assert skipped == [{label: 0.0 for label in rb.EVAL_LABELS}]  # predicted "false"
    found = {(tuple(r["head"]), tuple(r["tail"]), r["label"]) for r in mention_relations(doc, 0.5)}
    assert found == {
        ((0, 7), (17, 22), "CPR:4"), ((0, 7), (17, 29), "CPR:4"), ((67, 78), (31, 50), "CPR:3")
    }
    assert doc._.relation_levels == {label: "mention" for label in rb.EVAL_LABELS}
    # argmax: the label with the most mass even when it has less than 0.5
    assert rb.pair_scores([0.3, 0.4, 0.1, 0.1, 0.05, 0.05], "argmax")["CPR:3"] == 1.0
    assert rb.pair_scores([0.3, 0.4, 0.1, 0.1, 0.05, 0.05], "probability")["CPR:3"] == 0.4


def test_budget_matches_the_config(paired):
    docs, _, _ = paired
    budget = rb.config_budget(rb.load_config(rb.DEFAULT_CONFIG), docs)
    # four short abstracts fit one 1500-token padded batch: one step a pass
    assert budget["max_steps"] == 800 and budget["steps_per_pass"] == 1
    assert budget["passes"] == 800


def test_script_trains_and_writes_its_json(split, tiny_bert, tmp_path):
    out = tmp_path / "baseline.json"
    result = rb.main(
        [str(split), str(split), "--model", tiny_bert, "--max-steps", "4",
         "--batch-size", "4", "--output", str(out), "--eval-each-pass", "--threads", "1"]
    )
    assert json.loads(out.read_text(encoding="utf8")) == json.loads(json.dumps(result))
    # 12 pairs in batches of 4: a pass is 3 steps; dev scored after it and at the end
    assert result["training"]["steps"] == 4 and result["training"]["full_passes"] == 1
    assert result["training"]["pairs_seen"] == 16
    assert result["settings"]["steps"] == 4 and result["settings"]["passes_requested"] == 800
    assert [(p["pass"], p["step"]) for p in result["per_pass_dev"]] == [(1, 3)]
    assert result["counts"]["train"]["skipped"] == {"nested": 1, "overlap": 1}
    assert result["counts"]["dev"]["inputs"] == {"whole": 12, "window": 0, "cut": 0}
    argmax = result["dev"]["argmax"]
    for key in ("rel_micro_p", "rel_micro_r", "rel_micro_f", "rel_micro_counts", "rel_micro_per_type"):
        assert key in argmax
    assert set(argmax["rel_micro_per_type"]) == set(rb.EVAL_LABELS)
    assert set(result["dev"]["probability"]) == {"0.3", "0.4", "0.5", "0.6", "0.7"}
    assert result["inference"]["pairs"] == 12 and result["inference"]["pairs_per_second"] > 0
    assert "--passes cfg" in result["full_run_command"]
