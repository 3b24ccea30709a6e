"""Multi-corpus NER (configs/biomed.cfg): one transformer, one head per type,
each head learning only from the corpora that annotate its type, and a
merger writing doc.ents by a counted rule."""
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List
from unittest import mock

import numpy
import pytest
import spacy
import srsly
from project_commands import project_script
from spacy.tokens import Span
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from spacy_transformers import Transformer
from thinc.api import Adam

from spacy_biobert.corpora.multi import MultiCorpus
from spacy_biobert.corpora.readers import create_chemprot_corpus, create_pubtator_corpus
from spacy_biobert.evaluation.partial import partial_ner_score
from spacy_biobert.extensions import ANNOTATED_TYPES_KEY, CORPUS_KEY, TYPED_GOLD_KEY
from spacy_biobert.pipeline.typed_ner import DROPPED_KEY, PREDICTIONS_KEY

ROOT = Path(__file__).resolve().parents[1]
CHEMPROT = ROOT / "tests" / "data" / "chemprot_tiny"
CHEMPROT_MAP = {"CHEMICAL": "Chemical", "GENE-Y": "Gene", "GENE-N": "Gene"}

BC5CDR = """\
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
NCBI = """\
5|t|Hereditary breast cancer.
5|a|Families with epilepsy.
5\t11\t24\tbreast cancer\tSpecificDisease\tD001943
5\t40\t48\tepilepsy\tDiseaseClass\tD004827
"""


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("biomed")
    (folder / "bc5cdr.txt").write_text(BC5CDR)
    (folder / "ncbi.txt").write_text(NCBI)
    return folder


def multi_corpus(folder: Path, annotates=None) -> MultiCorpus:
    return MultiCorpus(
        {
            "bc5cdr": create_pubtator_corpus(folder / "bc5cdr.txt"),
            "ncbi": create_pubtator_corpus(folder / "ncbi.txt", label_map="ncbi"),
            "chemprot": create_chemprot_corpus(CHEMPROT, label_map=CHEMPROT_MAP),
        },
        annotates,
    )


@pytest.fixture(scope="module")
def nlp(tiny_bert):
    config = load_config(
        ROOT / "configs" / "biomed.cfg", overrides={"paths.base_model": tiny_bert}, interpolate=True
    )
    return load_model_from_config(config, auto_fill=True, validate=True)


@pytest.fixture(scope="module")
def examples(nlp, corpus_files):
    return list(multi_corpus(corpus_files)(nlp))


def by_corpus(examples, name):
    return [eg for eg in examples if eg.reference.user_data[CORPUS_KEY] == name]


def test_multi_corpus_marks_corpus_and_annotated_types(examples):
    types = {eg.reference.user_data[CORPUS_KEY]: eg.reference.user_data[ANNOTATED_TYPES_KEY]
             for eg in examples}
    assert types == {
        "bc5cdr": ["Chemical", "Disease"],
        "ncbi": ["Disease"],
        "chemprot": ["Chemical", "Gene"],
    }
    (doc100,) = [eg.reference for eg in by_corpus(examples, "chemprot") if eg.reference._.doc_id == "100"]
    typed = {(s.text, s.label_) for s in doc100.spans[TYPED_GOLD_KEY]}
    # the overlapping chemical inside a gene name is kept in the typed group
    assert {("Acyl-CoA", "Chemical"), ("Acyl-CoA synthetase", "Gene")} <= typed
    assert "Acyl-CoA" not in {e.text for e in doc100.ents}


def test_multi_corpus_typed_gold_key(nlp, corpus_files):
    """The typed gold can also go to the group the heads predict into, so a
    relation component takes gold candidates from it in training and
    predicted ones end to end (configs/biomed_joint.cfg)."""
    corpus = MultiCorpus(
        {"chemprot": create_chemprot_corpus(CHEMPROT, label_map=CHEMPROT_MAP)},
        typed_gold_key=PREDICTIONS_KEY,
    )
    for eg in corpus(nlp):
        ref = eg.reference
        assert [(s.start, s.end, s.label_) for s in ref.spans[PREDICTIONS_KEY]] == [
            (s.start, s.end, s.label_) for s in ref.spans[TYPED_GOLD_KEY]
        ]
        assert {s.label_ for s in ref.spans[PREDICTIONS_KEY]} <= {"Chemical", "Gene"}


def test_biobert_sentences_splits_raw_text_by_the_readers_rule():
    from spacy_biobert.annotate.inputs import Record
    from spacy_biobert.annotate.window import make_doc
    from spacy_biobert.corpora.sentences import sentence_starts

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_sentences")
    text = "Aspirin inhibits COX-2 (e.g. in rats). Lithium was given. Dr. Smith agreed."
    doc = nlp(text)
    assert [s.start_char for s in doc.sents] == [0, *sentence_starts(text)]
    assert [s.text for s in doc.sents][1] == "Lithium was given."
    # never inside an entity; passages start sentences; set boundaries are kept
    doc = nlp.make_doc("Title without stop Lithium. Was given")
    doc.ents = [Span(doc, 3, 6, label="Chemical")]  # "Lithium. Was"
    nlp.get_pipe("biobert_sentences")(doc)
    assert [s.text for s in doc.sents] == ["Title without stop Lithium. Was given"]
    passages = [("title", 0, "A title"), ("abstract", 8, "Lithium was given.")]
    rec = Record(0, "1", "A title Lithium was given.", passages)
    doc = nlp(make_doc(nlp, rec))
    assert [s.text for s in doc.sents] == ["A title", "Lithium was given."]
    assert [s.text for s in nlp(doc).sents] == ["A title", "Lithium was given."]


def test_multi_corpus_errors(corpus_files):
    with pytest.raises(ValueError, match="E703"):
        MultiCorpus({})
    with pytest.raises(ValueError, match="E704"):
        multi_corpus(corpus_files, annotates={"bc5": ["Chemical"]})


def test_multi_corpus_repeat_gives_a_corpus_more_of_each_pass(nlp, corpus_files, examples):
    corpus = MultiCorpus(
        {
            "bc5cdr": create_pubtator_corpus(corpus_files / "bc5cdr.txt"),
            "chemprot": create_chemprot_corpus(CHEMPROT, label_map=CHEMPROT_MAP),
        },
        repeat={"chemprot": 3},
    )
    repeated = list(corpus(nlp))
    assert len(by_corpus(repeated, "bc5cdr")) == len(by_corpus(examples, "bc5cdr"))
    copies = by_corpus(repeated, "chemprot")
    once = by_corpus(examples, "chemprot")
    assert len(copies) == 3 * len(once)
    ids = [eg.reference._.doc_id for eg in copies]
    assert sorted(ids) == sorted(3 * [eg.reference._.doc_id for eg in once])
    # copies are separate Examples with the same annotation, relations included
    first, second = copies[0], copies[1]
    assert first is not second and first.reference is not second.reference
    assert first.reference._.doc_id == second.reference._.doc_id
    assert first.reference._.gold_relations == second.reference._.gold_relations
    assert [(s.start, s.end, s.label_) for s in first.reference.spans[TYPED_GOLD_KEY]] == [
        (s.start, s.end, s.label_) for s in second.reference.spans[TYPED_GOLD_KEY]
    ]
    second.reference.user_data[CORPUS_KEY] = "changed"
    assert first.reference.user_data[CORPUS_KEY] == "chemprot"


@pytest.mark.parametrize(
    "repeat, match",
    [({"bc5": 2}, r"E704\] .*repeat names 'bc5'"), ({"bc5cdr": 0}, "E705"),
     ({"bc5cdr": 1.5}, "E705"), ({"bc5cdr": True}, "E705")],
)
def test_multi_corpus_repeat_is_checked(corpus_files, repeat, match):
    with pytest.raises(ValueError, match=match):
        MultiCorpus({"bc5cdr": create_pubtator_corpus(corpus_files / "bc5cdr.txt")}, repeat=repeat)


def test_each_head_sees_only_corpora_that_annotate_its_type(nlp, examples):
    gene = nlp.get_pipe("ner_gene")
    chemical = nlp.get_pipe("ner_chemical")
    bc5 = by_corpus(examples, "bc5cdr")[0]
    # BC5CDR has no gene annotation: every token missing, nothing learned
    view = gene._view(bc5)
    assert all(t.ent_iob == 0 for t in view.reference)
    assert not gene.moves.has_gold(view)
    # ChemProt annotates genes: gene spans, every other token outside
    cp = [eg for eg in by_corpus(examples, "chemprot") if eg.reference._.doc_id == "100"][0]
    gene_view = gene._view(cp)
    assert {e.label_ for e in gene_view.reference.ents} == {"Gene"}
    assert all(t.ent_iob != 0 for t in gene_view.reference)
    chem_view = chemical._view(cp)
    assert "Acyl-CoA" in {e.text for e in chem_view.reference.ents}
    # NCBI annotates diseases only: the chemical head does not learn from it
    ncbi = by_corpus(examples, "ncbi")[0]
    assert not chemical.moves.has_gold(chemical._view(ncbi))


def test_initialize_gives_each_head_its_own_labels(nlp, examples):
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ner_chemical").labels == ("Chemical",)
    assert nlp.get_pipe("ner_disease").labels == ("Disease",)
    assert nlp.get_pipe("ner_gene").labels == ("Gene",)
    assert nlp.get_pipe("biobert").listening_components == ["ner_chemical", "ner_disease", "ner_gene"]


def test_transformer_backprops_when_the_last_listener_has_no_gold(nlp, examples):
    """ner_gene is the last listener, and the transformer backpropagates only
    when the last listener calls back: a BC5CDR-only batch (no gene gold)
    must still train it with the other heads' gradients."""
    nlp.initialize(lambda: examples)
    transformer = nlp.get_pipe("biobert").model
    backprops = []
    begin_update = type(transformer).begin_update

    def spy(model, docs):
        output, backprop = begin_update(model, docs)
        if model is not transformer:
            return output, backprop

        def counted(d_output):
            backprops.append(len(docs))
            return backprop(d_output)

        return output, counted

    with mock.patch.object(type(transformer), "begin_update", spy):
        losses = nlp.update(by_corpus(examples, "bc5cdr"), sgd=Adam(0.001))
    assert losses["ner_gene"] == 0.0 and losses["ner_chemical"] > 0
    assert backprops == [2]


def test_lexical_features_beside_the_listener(tiny_bert, examples, tmp_path):
    """configs/biomed.cfg puts hashed NORM/PREFIX/SUFFIX/SHAPE embeddings beside
    the listener in every head; `[paths] ner_features = []` switches them off
    (the ablation)."""
    config = load_config(
        ROOT / "configs" / "biomed.cfg", overrides={"paths.base_model": tiny_bert}, interpolate=True
    )
    featured = load_model_from_config(config, auto_fill=True, validate=True)
    featured.initialize(lambda: examples)
    names = {node.name for node in featured.get_pipe("ner_gene").model.walk()}
    assert any("hashembed" in n for n in names)
    assert featured.get_pipe("biobert").listening_components == [
        "ner_chemical", "ner_disease", "ner_gene"
    ]
    losses = featured.update(examples, sgd=Adam(0.001))
    assert losses["ner_gene"] > 0
    doc = featured("Aspirin inhibits COX-2 kinase.")
    assert {s.label_ for s in doc.spans[PREDICTIONS_KEY]} <= {"Chemical", "Disease", "Gene"}
    featured.to_disk(tmp_path / "featured")
    again = spacy.load(tmp_path / "featured")("Aspirin inhibits COX-2 kinase.")
    assert [(s.start, s.end, s.label_) for s in again.spans[PREDICTIONS_KEY]] == [
        (s.start, s.end, s.label_) for s in doc.spans[PREDICTIONS_KEY]
    ]
    plain_config = load_config(
        ROOT / "configs" / "biomed.cfg",
        overrides={"paths.base_model": tiny_bert, "paths.ner_features": []},
        interpolate=True,
    )
    plain = load_model_from_config(plain_config, auto_fill=True, validate=True)
    assert not any("hashembed" in n.name for n in plain.get_pipe("ner_gene").model.walk())


def test_merger_rule_and_counts(nlp):
    merger = nlp.get_pipe("biobert_entity_merger")
    doc = nlp.make_doc("Acyl-CoA synthetase binds KATP channels today")
    doc.spans[PREDICTIONS_KEY] = [
        Span(doc, 0, 3, label="Chemical"),  # Acyl-CoA
        Span(doc, 0, 4, label="Gene"),  # Acyl-CoA synthetase: longer wins
        Span(doc, 5, 7, label="Gene"),  # KATP channels: equal length,
        Span(doc, 5, 7, label="Disease"),  # priority Chemical > Disease > Gene
    ]
    merger(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Acyl-CoA synthetase", "Gene"),
        ("KATP channels", "Disease"),
    ]
    assert sorted((s.text, s.label_) for s in doc.spans[DROPPED_KEY]) == [
        ("Acyl-CoA", "Chemical"),
        ("KATP channels", "Gene"),
    ]
    reference = nlp.make_doc(doc.text)
    reference.ents = [Span(reference, 0, 4, label="Gene")]
    scores = merger.score([Example(doc, reference)])
    assert scores["ents_overlaps_dropped"] == 2
    assert scores["ents_overlaps_dropped_rate"] == 0.5


def test_evaluate_counts_how_often_the_overlap_rule_fires():
    from spacy.language import Language

    from spacy_biobert.evaluation import evaluate_ner

    @Language.component("test_fixed_heads")
    def fixed_heads(doc):
        doc.spans[PREDICTIONS_KEY] = [
            Span(doc, 0, 1, label="Chemical"), Span(doc, 0, 2, label="Gene"),
            Span(doc, 3, 4, label="Disease"),
        ]
        return doc

    nlp = spacy.blank("en")
    nlp.add_pipe("test_fixed_heads")
    nlp.add_pipe("biobert_entity_merger", config={"priority": ["Chemical", "Disease", "Gene"]})
    reference = nlp.make_doc("Acyl-CoA synthetase in asthma")
    reference.ents = [Span(reference, 0, 2, label="Gene")]
    scores = evaluate_ner(nlp, [Example(nlp.make_doc(reference.text), reference)]).as_dict()
    assert scores["ents_overlaps_dropped"] == 1 and scores["ents_head_predictions"] == 3
    assert scores["ents_unscored"] == {"Disease": 1}  # the corpus has Gene only
    plain = spacy.blank("en")
    example = Example(plain.make_doc("x"), plain.make_doc("x"))
    assert "ents_overlaps_dropped" not in evaluate_ner(plain, [example]).as_dict()


def test_scorer_leaves_out_types_the_corpus_does_not_annotate(nlp):
    predicted = nlp.make_doc("Cocaine binds COX-2 in rats")
    predicted.ents = [Span(predicted, 0, 1, label="Chemical"), Span(predicted, 2, 5, label="Gene")]
    reference = nlp.make_doc(predicted.text)
    reference.ents = [Span(reference, 0, 1, label="Chemical")]
    reference.user_data[ANNOTATED_TYPES_KEY] = ["Chemical", "Disease"]
    reference.user_data[CORPUS_KEY] = "bc5cdr"
    scores = partial_ner_score([Example(predicted, reference)])
    assert scores["ents_p"] == 1.0 and scores["ents_f"] == 1.0
    assert scores["ents_unscored"] == {"Gene": 1}
    # without the corpus's types (one-corpus readers) the Gene is a false positive
    del reference.user_data[ANNOTATED_TYPES_KEY]
    assert partial_ner_score([Example(predicted, reference)])["ents_p"] == 0.5


def test_head_needs_entity_types(tiny_bert):
    blank = spacy.blank("en")
    blank.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    with pytest.raises(ValueError, match="E701"):
        blank.add_pipe("biobert_ner", name="ner_x", config={"entity_types": []})


def weights(model) -> List[numpy.ndarray]:
    """Every parameter of a thinc model, the torch ones of its shims too."""
    arrays = [model.ops.to_numpy(node.get_param(p)) for node in model.walk()
              for p in node.param_names if node.has_param(p)]
    arrays += [t.detach().cpu().numpy() for node in model.walk() for shim in node.shims
               for t in shim._model.parameters()]
    return arrays


def corpus_overrides(corpus_files: Path) -> List[str]:
    """--paths overrides pointing biomed.cfg and biomed_joint.cfg at the tiny corpora."""
    files = {"bc5cdr": corpus_files / "bc5cdr.txt", "ncbi": corpus_files / "ncbi.txt",
             "chemprot": CHEMPROT}
    return [arg for name, path in files.items() for split in ("train", "dev")
            for arg in (f"--paths.{name}_{split}", str(path))]


@pytest.fixture(scope="module")
def biomed_project(corpus_files, tmp_path_factory) -> Path:
    """A project folder (configs/, metrics/) with the tiny corpora under
    corpora/ in the publishers' layout, which `--vars.corpora` points at."""
    root = tmp_path_factory.mktemp("biomed-project")
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "metrics").mkdir()
    corpora = root / "corpora"
    for folder, split, source in [
        ("bc5cdr", "CDR_TrainingSet.PubTator.txt", "bc5cdr.txt"),
        ("bc5cdr", "CDR_DevelopmentSet.PubTator.txt", "bc5cdr.txt"),
        ("ncbi-disease", "NCBItrainset_corpus.txt", "ncbi.txt"),
        ("ncbi-disease", "NCBIdevelopset_corpus.txt", "ncbi.txt"),
    ]:
        (corpora / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus_files / source, corpora / folder / split)
    for split in ("chemprot_training", "chemprot_development"):
        shutil.copytree(CHEMPROT, corpora / "chemprot" / split)
    return root


def run_project_command(project: Path, name: str, *extra: str, **project_vars: str) -> None:
    args = project_script(name, corpora="corpora", **project_vars) + list(extra)
    run = subprocess.run(args, cwd=project, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_biomed(tiny_bert, biomed_project) -> Path:
    """The biomed workflow's first two steps on a few documents of each
    corpus (slow tests only): `pretrain-base` adapts the base model to the
    train splits' text, and `train-biomed` trains configs/biomed.cfg on it."""
    run_project_command(
        biomed_project, "pretrain-base",
        "--max-steps", "2", "--head-warmup-steps", "1", "--warmup-steps", "1",
        "--batch-size", "4", "--max-length", "64", "--heldout-fraction", "0",
        base_model=tiny_bert, adapted_model="adapted",
    )
    run_project_command(
        biomed_project, "train-biomed",
        "--training.max_steps", "4", "--training.eval_frequency", "2",
        "--training.optimizer.learn_rate.warmup_steps", "1",
        adapted_model="adapted",
    )
    return biomed_project / "training" / "biomed" / "model-best"


@pytest.mark.slow
def test_biomed_workflow_trains_on_the_adapted_base(trained_biomed, biomed_project):
    """`pretrain-base` wrote an adapted model from the train splits' text, and
    `train-biomed` started its transformer from that folder."""
    adapted = biomed_project / "adapted"
    metrics = srsly.read_json(adapted / "pretraining_metrics.json")
    assert metrics["steps"] == 3 and metrics["data"]["train_documents"] >= 5
    assert srsly.read_json(biomed_project / "metrics" / "pretrain_heldout.json") == metrics
    config = spacy.util.load_config(trained_biomed / "config.cfg")
    assert config["paths"]["base_model"] == "adapted"
    project = srsly.read_yaml(ROOT / "project.yml")
    assert project["workflows"]["biomed"][:2] == ["pretrain-base", "train-biomed"]


@pytest.mark.slow
def test_biomed_config_trains_and_gives_three_types(trained_biomed):
    """One nlp, one transformer, three types out (the untrained heads'
    predictions)."""
    nlp = spacy.load(trained_biomed)
    assert [name for name, _ in nlp.pipeline if name.startswith("ner_")] == [
        "ner_chemical", "ner_disease", "ner_gene"
    ]
    transformers = [name for name, pipe in nlp.pipeline if isinstance(pipe, Transformer)]
    assert transformers == ["biobert"]
    docs = list(nlp.pipe([
        "Aspirin inhibits COX-2 kinase. Acyl-CoA synthetase is activated by estradiol.",
        "Cocaine induced acute heart failure. Lithium causes nephrotoxicity in rats.",
    ]))
    predicted = {s.label_ for doc in docs for s in doc.spans[PREDICTIONS_KEY]}
    assert predicted == {"Chemical", "Disease", "Gene"}
    for doc in docs:  # doc.ents: flat, every head span kept or counted as dropped
        assert len(doc.ents) + len(doc.spans[DROPPED_KEY]) == len(doc.spans[PREDICTIONS_KEY])


@pytest.mark.slow
def test_chemprot_relations_on_the_biomed_pipeline_end_to_end(
    trained_biomed, corpus_files, tmp_path
):
    """configs/biomed_joint.cfg: relations learned jointly with the three NER
    heads on the one transformer (nothing frozen) from gold (Chemical, Gene)
    pairs, scored on gold and end to end (the pipeline's own predicted
    entities), then assembled with configs/package_biomed.cfg into one
    pipeline with one transformer whose relations read the heads' predictions."""
    import json

    out = tmp_path / "rel"
    cmd = [sys.executable, "-m", "spacy_biobert"]
    run = subprocess.run(
        cmd + ["train", str(ROOT / "configs" / "biomed_joint.cfg"), "--output", str(out),
               "--paths.model", str(trained_biomed)] + corpus_overrides(corpus_files)
        + ["--training.max_steps", "4", "--training.eval_frequency", "2",
           "--training.optimizer.learn_rate.warmup_steps", "1"],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    # Stage 2 keeps training the stage-1 components: the transformer and
    # every head changed.
    stage1, stage2 = spacy.load(trained_biomed), spacy.load(out / "model-last")
    for name in ("biobert", "ner_chemical", "ner_disease", "ner_gene"):
        before, after = weights(stage1.get_pipe(name).model), weights(stage2.get_pipe(name).model)
        assert len(before) == len(after) > 0
        assert any(not numpy.array_equal(b, a) for b, a in zip(before, after)), name
    nlp = spacy.load(out / "model-best")
    rel = nlp.get_pipe("biobert_relations")
    assert rel.labels == ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")
    assert rel.cfg["gold_entities"] and rel.spans_key == PREDICTIONS_KEY
    assert [n for n, p in nlp.pipeline if isinstance(p, Transformer)] == ["biobert"]
    scores = {}
    for mode in ("gold", "end-to-end"):
        path = tmp_path / f"{mode}.json"
        extra = ["--end-to-end"] if mode == "end-to-end" else []
        run = subprocess.run(
            cmd + ["evaluate-relations", str(out / "model-best"), str(CHEMPROT),
                   "--output", str(path), "--thresholds", "0.0", "--label-map", "chemprot"] + extra,
            capture_output=True, text=True,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        scores[mode] = json.loads(path.read_text())["thresholds"]["0.0"]
    # At threshold 0 every candidate is predicted: on gold entities every gold
    # relation inside a sentence is found; end to end only those whose two
    # mentions the (untrained) heads found at the exact offsets.
    assert scores["gold"]["rel_micro_r"] > 0.9
    assert scores["end-to-end"]["rel_micro_r"] < scores["gold"]["rel_micro_r"]
    # The release pipeline: relations on predicted entities, one transformer.
    release = tmp_path / "release"
    run = subprocess.run(
        [sys.executable, "-m", "spacy", "assemble", str(ROOT / "configs" / "package_biomed.cfg"),
         str(release), "--paths.model", str(out / "model-best")],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    nlp = spacy.load(release)
    assert nlp.get_pipe("biobert_relations").cfg["gold_entities"] is False
    assert [n for n, p in nlp.pipeline if isinstance(p, Transformer)] == ["biobert"]
    # The NER heads listen; the pair-aware relation model runs biobert's own
    # transformer (a shared encoder, not a listener, not a copy).
    assert nlp.get_pipe("biobert").listening_components == ["ner_chemical", "ner_disease", "ner_gene"]
    encoder = nlp.get_pipe("biobert_relations").model.get_ref("encoder")
    assert encoder.upstream_model is nlp.get_pipe("biobert").model
    doc = nlp("Aspirin inhibits COX-2 kinase. Acyl-CoA synthetase is activated by estradiol.")
    spans = {(s.start, s.end, s.label_) for s in doc.spans[PREDICTIONS_KEY]}
    chemicals = sum(label == "Chemical" for *_, label in spans)
    genes = sum(label == "Gene" for *_, label in spans)
    assert len(doc._.relation_pairs) <= chemicals * genes
    for head, tail, probs in doc._.relation_pairs:
        assert tuple(head[:3]) in spans and tuple(tail[:3]) in spans
        assert (head[2], tail[2]) == ("Chemical", "Gene") and set(probs) == set(rel.labels)


def test_writers_keep_relations_whose_arguments_doc_ents_left_out(tmp_path):
    """A relation between a chemical nested in a gene name and that gene: the
    merger keeps only the gene in doc.ents, but every writer that links
    relations to mention ids writes the chemical as a mention too."""
    import json

    from spacy_biobert.corpora import read_bioc, read_chemprot
    from spacy_biobert.corpora.bioc_format import write_bioc_xml
    from spacy_biobert.corpora.chemprot import write_chemprot
    from spacy_biobert.corpora.jsonl import write_jsonl
    from spacy_biobert.extensions import install_extensions

    install_extensions()
    from spacy.tokens import Doc

    words = ["Acyl-CoA", "synthetase", "binds", "estradiol", "."]
    doc = Doc(spacy.blank("en").vocab, words=words)
    chem, gene, other = Span(doc, 0, 1, "Chemical"), Span(doc, 0, 2, "Gene"), Span(doc, 3, 4, "Chemical")
    doc.spans[PREDICTIONS_KEY] = [chem, gene, other]
    doc.ents = [gene, other]
    doc._.doc_id = "7"
    doc._.relation_pairs = [
        ((0, 1, "Chemical", ""), (0, 2, "Gene", ""), {"CPR:4": 0.9}),
        ((3, 4, "Chemical", ""), (0, 2, "Gene", ""), {"CPR:4": 0.2}),
    ]
    write_jsonl([doc], tmp_path / "o.jsonl")
    (record,) = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(m["id"], m["text"], m["type"]) for m in record["mentions"]] == [
        ("M1", "Acyl-CoA", "Chemical"),
        ("M2", "Acyl-CoA synthetase", "Gene"),
        ("M3", "estradiol", "Chemical"),
    ]
    relations = [(r["head"], r["tail"], r["label"]) for r in record["predicted_relations"]]
    assert relations == [("M1", "M2", "CPR:4")]
    for write, read, path in ((write_bioc_xml, read_bioc, tmp_path / "o.xml"),
                              (write_chemprot, read_chemprot, tmp_path / "cp")):
        write([doc], path)
        (back,) = list(read(path))
        spans = {s.id_: (s.text, s.label_) for s in back.spans["mentions"]}
        rels = [(spans[r["head"]], spans[r["tail"]], r["label"]) for r in back._.gold_relations]
        assert rels == [(("Acyl-CoA", "Chemical"), ("Acyl-CoA synthetase", "Gene"), "CPR:4")], path


@pytest.mark.slow
def test_training_data_bench_reads_the_sourced_transformer_of_biomed_joint(
    trained_biomed, biomed_project, corpus_files, tmp_path
):
    """bench/training_data.py on stage 2, whose `biobert` is sourced from the
    stage-1 pipeline: ChemProt read twice a pass (`repeat`), and the per-pair
    relations' wordpieces counted with the sourced transformer's tokenizer."""
    import json

    out = tmp_path / "data.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_data.py"),
         str(ROOT / "configs" / "biomed_joint.cfg"), "--output", str(out),
         "--paths.model", str(trained_biomed)] + corpus_overrides(corpus_files),
        capture_output=True, text=True, cwd=biomed_project,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    passes = report["passes_in_max_steps"]
    assert passes["chemprot"] == pytest.approx(2 * passes["bc5cdr"], abs=0.02)
    cost = report["relation_encoder_cost"]
    assert cost["chemprot"]["marked_pair_wordpieces_per_document"] > 0
    assert cost["bc5cdr"]["marked_pair_wordpieces_per_document"] == 0


@pytest.mark.slow
def test_spacy_debug_data_runs_on_biomed_joint(trained_biomed, corpus_files, capsys):
    """configs/biomed_joint.cfg (stage 2, sourced from a biomed run) through
    spaCy's own `spacy debug data`."""
    from spacy.cli._util import parse_config_overrides
    from test_config_debug_data import run_spacy_debug_data

    overrides = parse_config_overrides(
        ["--paths.model", str(trained_biomed)] + corpus_overrides(corpus_files)
    )
    run_spacy_debug_data(ROOT / "configs" / "biomed_joint.cfg", overrides, capsys)
