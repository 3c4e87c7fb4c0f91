"""Q1 and Q2 answers are rendered from facts: other facts, other numbers; the question verbatim."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from mnli_lesson.config import resolve_config
from mnli_lesson.data import LABELS, MnliData
from mnli_lesson.writeups import (
    LABEL_CHECK_PAIR,
    QUESTIONS,
    data_facts,
    find_label_check_pair,
    label_evidence,
    negation_shares,
    q1_answer,
    q2_answer,
)

KOREAN_SUMMARY = "**한 줄 요약:**"


def frame(rows):
    return pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])


def toy_data(n_per_label: int, negate: int, *, with_check_pair: bool = False) -> MnliData:
    """Balanced toy splits; ``negate`` picks the label whose hypotheses say "not"."""
    rows = []
    for label in range(len(LABELS)):
        for i in range(n_per_label):
            words = " ".join(["word"] * (i % 7 + 1))
            hypothesis = f"It is {'not ' if label == negate else ''}here {i}."
            rows.append((f"The premise {words} number {i}.", hypothesis, label))
    if with_check_pair:
        rows.insert(0, (*LABEL_CHECK_PAIR, 1))
    train = frame(rows)
    validation = frame(rows[: 2 * len(LABELS)])
    return MnliData(
        splits={"train": train, "validation_matched": validation,
                "validation_mismatched": validation.copy()},
        source="sample",
        dropped={"train": {"empty_pair": 2, "no_gold_label": 5},
                 "validation_matched": {"empty_pair": 0, "no_gold_label": 0},
                 "validation_mismatched": {"empty_pair": 0, "no_gold_label": 0}},
    )


def cfg_for(**overrides):
    return resolve_config("tiny", environ={}, **overrides)


@pytest.fixture
def two_data_facts():
    small = data_facts(toy_data(10, negate=2), np.arange(10, 50), cfg_for(max_length=32))
    big = data_facts(toy_data(40, negate=0, with_check_pair=True), np.arange(20, 121),
                     cfg_for(max_length=64, train_size=50))
    return small, big


def model_facts_dict(layers: int, hidden: int, loss: float) -> dict:
    """What model_facts returns, for two made-up models (no model is built)."""
    parts = {"embeddings": hidden * 1000, "encoder": layers * hidden * 50,
             "pre_classifier": hidden * hidden + hidden, "classifier": hidden * 3 + 3}
    counts = {k: {"total": v, "trainable": v} for k, v in parts.items()}
    counts["all"] = {"total": sum(parts.values()), "trainable": sum(parts.values())}
    return {
        "profile": "tiny", "checkpoint": "tiny",
        "model_class": "DistilBertForSequenceClassification", "model_type": "distilbert",
        "n_layers": layers, "hidden_size": hidden, "n_heads": 2, "ffn_size": 2 * hidden,
        "vocab_size": 1500 + layers, "max_positions": 128, "max_length": 48 + 8 * layers,
        "id2label": {str(i): name for i, name in enumerate(LABELS)},
        "parameters": counts,
        "trainable_when_frozen": parts["pre_classifier"] + parts["classifier"],
        "tokenizer_keys": ["input_ids", "attention_mask"],
        "forward_keys": ["input_ids", "attention_mask"],
        "single_shape": [1, 11 + layers], "pair_lengths": [11 + layers, 17, 23, 31 + layers],
        "batch_shape": [4, 31 + layers], "padding_zeros": 40 + layers,
        "logits_shape": [4, 3], "loss": loss, "chance_loss": math.log(3),
    }


def evidence(facts: dict) -> str:
    return label_evidence(facts["negation_share"], facts["label_check"], facts["source"])


def korean_summary_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(KOREAN_SUMMARY)]


def test_data_facts_are_json_ready_and_computed(two_data_facts):
    small, big = two_data_facts
    for facts in (small, big):
        json.dumps(facts, allow_nan=False)
    assert small["sizes"]["train"] == 30 and big["sizes"]["train"] == 121
    assert small["used"]["train"] == 30 and big["used"]["train"] == 50
    assert small["max_length"]["chosen"] == 56  # p99 of 10..49 is 49, rounded up to 56
    assert small["max_length"]["chosen"] % 8 == 0
    assert big["max_length"]["chosen"] == 120
    assert small["max_length"]["configured"] == 32
    assert small["max_length"]["configured_truncated_share"] == pytest.approx(17 / 40)


def test_q1_numbers_follow_the_facts(two_data_facts):
    small, big = two_data_facts
    a, b = q1_answer(small), q1_answer(big)
    assert a != b
    for facts, text in ((small, a), (big, b)):
        assert QUESTIONS["Q1"][0] in text and QUESTIONS["Q1"][1] in text
        assert f"`max_length = {facts['max_length']['chosen']}`" in text
        assert f"{facts['used']['train']:,}" in text
        assert facts["profile"] in text
        lines = korean_summary_lines(text)
        assert len(lines) == 1 and str(facts["max_length"]["chosen"]) in lines[0]
    assert "`max_length = 56`" in a and "`max_length = 120`" in b
    assert "`max_length = 120`" not in a


def test_negation_evidence_names_the_label_with_most_negations(two_data_facts):
    small, big = two_data_facts
    assert small["negation_share"] == {"entailment": 0.0, "neutral": 0.0, "contradiction": 1.0}
    assert "not 1 as the original notebook claimed" in evidence(small)
    # Negations on entailment: the statistic proves nothing and the text says so.
    assert "no evidence" in evidence(big)
    assert "not 1 as the original" not in evidence(big)


def test_negation_shares_matches_whole_words_and_nt():
    df = frame([("p", "He didn't go.", 0), ("p", "Nothing happened.", 1),
                ("p", "A knotty nose.", 2), ("p", "Nobody is not here.", 2)])
    assert negation_shares(df) == {"entailment": 1.0, "neutral": 1.0, "contradiction": 0.5}
    assert negation_shares(df[df.label == 2])["entailment"] is None


def test_label_check_pair_found_only_when_present(two_data_facts):
    small, big = two_data_facts
    assert small["label_check"]["found"] is False
    assert "could not be made" in evidence(small)
    assert big["label_check"] == {"found": True, "split": "train", "label": 1,
                                  "label_name": "neutral"}
    assert "is labelled 1 in this data" in evidence(big)
    swapped = toy_data(3, negate=2)
    swapped.splits["train"] = pd.concat([frame([(*LABEL_CHECK_PAIR, 2)]), swapped.train])
    check = find_label_check_pair(swapped)
    assert check["label"] == 2
    facts = copy.deepcopy(small) | {"label_check": check}
    assert "label order differs" in evidence(facts)


def test_q2_numbers_follow_the_facts():
    small, big = model_facts_dict(2, 64, 1.0958), model_facts_dict(6, 384, 0.7321)
    a, b = q2_answer(small), q2_answer(big)
    assert a != b
    for facts, text in ((small, a), (big, b)):
        assert QUESTIONS["Q2"][0] in text and QUESTIONS["Q2"][1] in text
        assert f"{facts['parameters']['all']['total']:,}" in text
        assert str(facts["batch_shape"]) in text and str(facts["logits_shape"]) in text
        assert f"{facts['loss']:.3f}" in text
        lines = korean_summary_lines(text)
        assert len(lines) == 1 and f"{facts['n_layers']}층" in lines[0]
    assert "1.096" in a and "0.732" in b
    assert "hidden size 64" in a and "hidden size 384" in b
    assert "guesses about uniformly" in a and "guesses about uniformly" not in b


def test_q2_says_which_tokenizer_keys_are_dropped():
    facts = model_facts_dict(2, 64, 1.1)
    facts["tokenizer_keys"] = ["input_ids", "token_type_ids", "attention_mask"]
    assert "does not accept `token_type_ids`" in q2_answer(facts)
    facts["forward_keys"] = list(facts["tokenizer_keys"])
    assert "accepts all of them" in q2_answer(facts)


def test_model_facts_on_the_tiny_model():
    from mnli_lesson.encoding import load_tokenizer
    from mnli_lesson.models import build_model
    from mnli_lesson.writeups import EXAMPLE_PAIRS, model_facts

    cfg = cfg_for()
    model, tokenizer = build_model(cfg.model, seed=cfg.seed), load_tokenizer(cfg.model)
    model.train()
    facts = model_facts(model, tokenizer, cfg)
    json.dumps(facts, allow_nan=False)
    assert facts["logits_shape"] == [len(EXAMPLE_PAIRS), len(LABELS)]
    assert facts["batch_shape"] == [len(EXAMPLE_PAIRS), max(facts["pair_lengths"])]
    assert facts["single_shape"] == [1, facts["pair_lengths"][0]]
    assert facts["padding_zeros"] == sum(max(facts["pair_lengths"]) - n
                                         for n in facts["pair_lengths"])
    assert facts["id2label"] == {str(i): name for i, name in enumerate(LABELS)}
    assert set(facts["forward_keys"]) <= set(facts["tokenizer_keys"])
    params = facts["parameters"]
    head = params["pre_classifier"]["total"] + params["classifier"]["total"]
    assert facts["trainable_when_frozen"] == head
    assert math.isfinite(facts["loss"]) and facts["loss"] > 0
    assert model.training  # the forward pass left the mode as it found it
    assert str(facts["batch_shape"]) in q2_answer(facts)
