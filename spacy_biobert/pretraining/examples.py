"""Pretraining examples and masking.

`make_instances` follows BERT's `create_pretraining_data.py`: sentences of a
document are packed up to a target length (shorter with probability
`short_seq_prob`); for NSP a packed chunk of at least two sentences is cut at
a random sentence boundary into A and B, and with probability 0.5 B is
replaced by text from another document (label 1, "random") instead of the
true continuation (label 0, "is next"), as BertForPreTraining expects.
A pair longer than the budget loses tokens at a random end of its longer
side. For MLM alone a chunk is one segment, packed without cutting sentences.

Masking is done at batch time by transformers' DataCollatorForLanguageModeling
(15%, of which 80% [MASK], 10% a random token, 10% unchanged) or
DataCollatorForWholeWordMask (all wordpieces of a word together), each with
its own seeded generator, so batches are reproducible and resumable.
"""

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy

from .data import TokenizedDocument

IS_NEXT = 0
RANDOM_NEXT = 1


@dataclass
class Instance:
    input_ids: List[int]
    token_type_ids: List[int]
    next_sentence_label: Optional[int] = None


def make_instances(
    docs: Sequence[TokenizedDocument],
    rng: random.Random,
    *,
    max_length: int,
    nsp: bool,
    short_seq_prob: float = 0.1,
    cls_id: int,
    sep_id: int,
) -> List[Instance]:
    """All instances of one pass over `docs` (visited in a random order)."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    instances: List[Instance] = []
    for di in order:
        if nsp:
            instances.extend(_nsp_instances(docs, di, rng, max_length, short_seq_prob, cls_id, sep_id))
        else:
            instances.extend(_mlm_instances(docs[di], rng, max_length, short_seq_prob, cls_id, sep_id))
    rng.shuffle(instances)
    return instances


def _target_length(rng: random.Random, max_num: int, short_seq_prob: float) -> int:
    return rng.randint(2, max_num) if rng.random() < short_seq_prob else max_num


def _mlm_instances(doc, rng, max_length, short_seq_prob, cls_id, sep_id) -> List[Instance]:
    max_num = max_length - 2
    segments = doc.segments
    out: List[Instance] = []
    target = _target_length(rng, max_num, short_seq_prob)
    chunk: List[numpy.ndarray] = []
    length = 0
    i = 0
    while i < len(segments):
        seg = segments[i]
        if chunk and length + len(seg) > max_num:
            # the next sentence does not fit: close the chunk, keep the sentence
            out.append(_single(chunk, cls_id, sep_id))
            chunk, length = [], 0
            target = _target_length(rng, max_num, short_seq_prob)
            continue
        chunk.append(seg)
        length += len(seg)
        if length >= target or i == len(segments) - 1:
            out.append(_single(chunk, cls_id, sep_id))
            chunk, length = [], 0
            target = _target_length(rng, max_num, short_seq_prob)
        i += 1
    return out


def _single(chunk, cls_id, sep_id) -> Instance:
    ids = [int(t) for seg in chunk for t in seg]
    return Instance([cls_id] + ids + [sep_id], [0] * (len(ids) + 2))


def _nsp_instances(docs, di, rng, max_length, short_seq_prob, cls_id, sep_id) -> List[Instance]:
    max_num = max_length - 3
    segments = docs[di].segments
    out: List[Instance] = []
    target = _target_length(rng, max_num, short_seq_prob)
    chunk: List[numpy.ndarray] = []
    length = 0
    i = 0
    while i < len(segments):
        chunk.append(segments[i])
        length += len(segments[i])
        last = i == len(segments) - 1
        # A chunk closes once it is long enough *and* has two sentences, so a
        # true continuation always exists and the labels stay 50/50; a lone
        # sentence left at the end of a document (or a one-sentence document)
        # gives no instance.
        if (length >= target and len(chunk) >= 2) or last:
            if len(chunk) >= 2:
                a_end = rng.randint(1, len(chunk) - 1)
                tokens_a = [int(t) for seg in chunk[:a_end] for t in seg]
                if rng.random() < 0.5 and len(docs) > 1:
                    label = RANDOM_NEXT
                    target_b = max(1, target - len(tokens_a))
                    other = rng.randrange(len(docs) - 1)
                    other = other + 1 if other >= di else other
                    other_segments = docs[other].segments
                    start = rng.randrange(len(other_segments))
                    tokens_b: List[int] = []
                    for seg in other_segments[start:]:
                        tokens_b.extend(int(t) for t in seg)
                        if len(tokens_b) >= target_b:
                            break
                    # the unused sentences of this chunk are not wasted
                    i -= len(chunk) - a_end
                else:
                    label = IS_NEXT
                    tokens_b = [int(t) for seg in chunk[a_end:] for t in seg]
                _truncate_pair(tokens_a, tokens_b, max_num, rng)
                out.append(
                    Instance(
                        [cls_id] + tokens_a + [sep_id] + tokens_b + [sep_id],
                        [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1),
                        label,
                    )
                )
            chunk, length = [], 0
            target = _target_length(rng, max_num, short_seq_prob)
        i += 1
    return out


def _truncate_pair(a: List[int], b: List[int], max_num: int, rng: random.Random) -> None:
    while len(a) + len(b) > max_num:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


class Collator:
    """Pads instances and masks them with the transformers collator.

    `whole_word`: DataCollatorForWholeWordMask (wordpieces of a word are
    masked together), else DataCollatorForLanguageModeling. Both apply the
    80/10/10 rule to the selected positions. `seed` (>= 0) seeds the
    collator's own torch generator; its state is saved in checkpoints.
    """

    def __init__(self, tokenizer: Any, *, mlm_probability: float, whole_word: bool, seed: int):
        from transformers import DataCollatorForLanguageModeling, DataCollatorForWholeWordMask

        cls = DataCollatorForWholeWordMask if whole_word else DataCollatorForLanguageModeling
        # transformers treats seed 0 as "no seed" (global RNG): shift by one.
        self.inner = cls(
            tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability,
            return_tensors="pt", seed=seed + 1,
        )
        self.inner.create_rng()
        self.pad_id = tokenizer.pad_token_id or 0
        self.tokenizer = tokenizer

    def get_state(self):
        return self.inner.generator.get_state()

    def set_state(self, state) -> None:
        self.inner.generator.set_state(state)

    def __call__(self, instances: Sequence[Instance]) -> Dict[str, Any]:
        import torch

        width = max(len(x.input_ids) for x in instances)
        input_ids = torch.full((len(instances), width), self.pad_id, dtype=torch.long)
        token_type_ids = torch.zeros((len(instances), width), dtype=torch.long)
        attention_mask = torch.zeros((len(instances), width), dtype=torch.long)
        special = torch.ones((len(instances), width), dtype=torch.long)
        for row, x in enumerate(instances):
            n = len(x.input_ids)
            input_ids[row, :n] = torch.tensor(x.input_ids)
            token_type_ids[row, :n] = torch.tensor(x.token_type_ids)
            attention_mask[row, :n] = 1
            special[row, :n] = torch.tensor(
                self.tokenizer.get_special_tokens_mask(x.input_ids, already_has_special_tokens=True)
            )
        if hasattr(self.inner, "_whole_word_mask"):
            batch = self.inner([{"input_ids": x.input_ids} for x in instances])
            masked, labels = batch["input_ids"], batch["labels"]
            if masked.shape != input_ids.shape:
                raise RuntimeError("the tokenizer must pad on the right")
        else:
            masked, labels = self.inner.torch_mask_tokens(input_ids.clone(), special_tokens_mask=special)
        out = {
            "input_ids": masked,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
            "labels": labels,
        }
        if instances[0].next_sentence_label is not None:
            out["next_sentence_label"] = torch.tensor(
                [x.next_sentence_label for x in instances], dtype=torch.long
            )
        return out
