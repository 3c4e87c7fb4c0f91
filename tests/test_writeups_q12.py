"""Q1 and Q2 answers are rendered from facts: other facts, other numbers; the question verbatim."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mnli_lesson import checkpoints
from mnli_lesson.config import resolve_config
from mnli_lesson.core import LABELS
from mnli_lesson.data import MnliData
from mnli_lesson.label_order import NegationEvidence
from mnli_lesson.results import PartCount
from mnli_lesson.writeups import (
    LABEL_CHECK_PAIR,
    QUESTIONS,
    data_facts,
    find_label_check_pair,
    label_evidence,
    negation_evidence,
    negation_shares,
    q1_answer,
    q2_answer,
    question_block,
)
from mnli_lesson.writeups.facts import (
    CheckpointFacts,
    LabelCheck,
    ModelFacts,
    checkpoint_facts,
    source_kind,
)
from mnli_lesson.writeups.render import render

KOREAN_SUMMARY = "**한 줄 요약:**"


@pytest.fixture(autouse=True)
def known_checkpoints(monkeypatch) -> dict[str, checkpoints.CheckpointInfo]:
    """``checkpoint_info`` answers from this dict only: fast, and proves caveats are data."""
    known: dict[str, checkpoints.CheckpointInfo] = {}
    monkeypatch.setattr(checkpoints, "checkpoint_info", known.get, raising=False)
    return known


def frame(rows):
    return pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])


def toy_data(n_per_label: int, negate: int, *, with_check_pair: bool = False,
             source: str = "sample") -> MnliData:
    """Balanced toy splits; ``negate`` picks the label whose hypotheses say "not"."""
    rows = []
    for label in range(len(LABELS)):
        for i in range(n_per_label):
            words = " ".join(["word"] * (i % 7 + 1))
            hypothesis = f"It is {'not ' if label == negate else ''}here {i}."
            rows.append((f"The premise {words} number {i}.", hypothesis, label))
    if with_check_pair:
        rows.insert(0, (*LABEL_CHECK_PAIR, 1))
    validation = frame(rows[: 2 * len(LABELS)])
    return MnliData(
        splits={"train": frame(rows), "validation_matched": validation,
                "validation_mismatched": validation.copy()},
        source=source,
        dropped={"train": {"empty_pair": 2, "no_gold_label": 5},
                 "validation_matched": {"empty_pair": 0, "no_gold_label": 0},
                 "validation_mismatched": {"empty_pair": 1, "no_gold_label": 0}},
    )


def cfg_for(**overrides):
    return resolve_config("tiny", environ={}, **overrides)


@pytest.fixture
def two_datasets() -> tuple[MnliData, MnliData]:
    return (toy_data(10, negate=2),
            toy_data(40, negate=0, with_check_pair=True, source="kaggle"))


@pytest.fixture
def two_data_facts(two_datasets):
    small, big = two_datasets
    return (data_facts(small, np.arange(10, 50), cfg_for(max_length=32)),
            data_facts(big, np.arange(20, 121), cfg_for(max_length=64, train_size=50)))


def fake_model_facts(layers: int, hidden: int, loss: float, *, model: str = "tiny") -> ModelFacts:
    """What model_facts returns, for made-up models (no model is built)."""
    parts = {"embeddings": hidden * 1000, "encoder": layers * hidden * 50,
             "pre_classifier": hidden * hidden + hidden, "classifier": hidden * 3 + 3}
    counts = {k: PartCount(v, v) for k, v in parts.items()}
    counts["all"] = PartCount(sum(parts.values()), sum(parts.values()))
    return ModelFacts(
        profile="tiny", checkpoint=model, model=checkpoint_facts(model),
        model_class="DistilBertForSequenceClassification", n_layers=layers, hidden_size=hidden,
        n_heads=2, max_length=48 + 8 * layers,
        id2label={str(i): name for i, name in enumerate(LABELS)}, parameters=counts,
        trainable_when_frozen=parts["pre_classifier"] + parts["classifier"],
        tokenizer_keys=("input_ids", "attention_mask"),
        forward_keys=("input_ids", "attention_mask"), single_shape=(1, 11 + layers),
        pair_lengths=(11 + layers, 17, 23, 31 + layers), batch_shape=(4, 31 + layers),
        padding_zeros=40 + layers, logits_shape=(4, 3), loss=loss)


def evidence(data: MnliData) -> str:
    return label_evidence(negation_evidence(data.train), find_label_check_pair(data),
                          data.source)


def korean_summary_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(KOREAN_SUMMARY)]


def test_question_block_is_verbatim():
    block = question_block("Q2")
    assert block.startswith("**Q2.** " + QUESTIONS["Q2"][0])
    assert block.endswith(f"> *{QUESTIONS['Q2'][1]}*")


def test_data_facts_are_typed_json_ready_and_computed(two_data_facts):
    small, big = two_data_facts
    for facts in (small, big):
        json.dumps(facts.as_dict(), allow_nan=False)
    assert small.sizes["train"] == 30 and big.sizes["train"] == 121
    assert small.used["train"] == 30 and big.used["train"] == 50
    assert small.uses_all_train and not big.uses_all_train
    assert small.max_length.chosen == 56  # p99 of 10..49 is 49, rounded up to 56
    assert big.max_length.chosen == 120
    assert small.max_length.configured == 32
    assert small.max_length.configured_truncated_share == pytest.approx(17 / 40)
    assert small.max_length.truncated_share == 0 and big.max_length.truncated_share == 0
    assert small.dropped == {"empty_pair": 3, "no_gold_label": 5}
    assert (small.lengths.n_pairs, small.lengths.max) == (40, 49)
    assert small.lengths.mean == pytest.approx(29.5)
    with pytest.raises(AttributeError):
        small.profile = "gpu"  # type: ignore[misc]


def test_q1_numbers_follow_the_facts(two_data_facts):
    small, big = two_data_facts
    a, b = q1_answer(small), q1_answer(big)
    assert a != b
    for facts, text in ((small, a), (big, b)):
        assert QUESTIONS["Q1"][0] not in text  # the notebook's markdown asks it, once
        assert f"`max_length = {facts.max_length.chosen}`" in text
        assert f"{facts.used['train']:,}" in text and f"profile `{facts.profile}`" in text
        lines = korean_summary_lines(text)
        assert len(lines) == 1 and str(facts.max_length.chosen) in lines[0]
    assert "`max_length = 56`" in a and "`max_length = 120`" in b
    assert "`max_length = 120`" not in a
    assert "(all)" in a and "(a stratified, seeded subset)" in b
    assert "built-in sample" in a and "Kaggle export" in b
    assert "dropped 3 pairs with an empty side and 5 without a gold label" in a
    changed = q1_answer(replace(small, used=small.used | {"train": 17}))
    assert "trains on 17 of them" in changed and "trains on 30 of them" not in changed


def test_q1_names_the_stand_in_and_its_caveat_from_data(two_data_facts, known_checkpoints):
    small, _ = two_data_facts
    assert "randomly initialised" in q1_answer(small)  # tiny: random, from the setting
    folder = "/models/minilm-copy"
    reference = replace(small, checkpoint=checkpoint_facts("distilbert-base-uncased"))
    assert "The tokenizer is" not in q1_answer(reference)
    stand_in = q1_answer(replace(small, checkpoint=checkpoint_facts(folder)))
    assert "in place of `distilbert-base-uncased`'s" in stand_in and " is a " not in stand_in
    known_checkpoints[folder] = checkpoints.CheckpointInfo("org/mini", "a model that saw MNLI")
    text = " ".join(q1_answer(replace(small, checkpoint=checkpoint_facts(folder))).split())
    assert ("The tokenizer is `org/mini`'s, in place of `distilbert-base-uncased`'s: org/mini is "
            "a model that saw MNLI.") in text


def model_caveats(model: str, data: str, profile: str) -> str:
    text = render("model_caveats.md.j2", checkpoint=checkpoint_facts(model),
                  data_kind=source_kind(data), profile=profile)
    return " ".join(text.split())


def test_model_caveats_come_from_checkpoint_info_not_from_the_path(known_checkpoints):
    path = "/shared/models/all-MiniLM-L6-v2"
    assert model_caveats(path, "kaggle", "cpu") == ""  # nothing known about it
    known_checkpoints[path] = checkpoints.CheckpointInfo(
        "sentence-transformers/all-MiniLM-L6-v2", "a stand-in that saw SNLI and MNLI pairs.")
    assert model_caveats(path, "/data/mnli-sample", "cpu") == (
        "**About the checkpoint.** `sentence-transformers/all-MiniLM-L6-v2` (model "
        f"setting `{path}`) is a stand-in that saw SNLI and MNLI pairs.")
    tiny = model_caveats("tiny", "sample", "tiny")
    assert tiny.startswith("**A smoke test:** on the `tiny` profile every run starts from random")
    assert "nothing here is a claim about pre-training" in tiny
    assert "built-in sample" in tiny and "About the checkpoint" not in tiny


def test_negation_evidence_names_the_label_with_most_negations(two_datasets):
    small, big = two_datasets
    assert negation_shares(small.train) == {"entailment": 0.0, "neutral": 0.0,
                                            "contradiction": 1.0}
    assert "here 2, not 1 as the original notebook claimed" in evidence(small)
    # Negations on entailment, clearly: the labels look permuted and the text says so.
    assert "point clearly to 0 (entailment)" in evidence(big) and "no evidence" not in evidence(big)
    assert "not 1 as the original" not in evidence(big)
    assert "Run with the Kaggle data" not in evidence(big)  # it is the Kaggle data
    tie = label_evidence(NegationEvidence({"entailment": 0.2, "neutral": 0.2,
                                           "contradiction": 0.1}, None, 0.0),
                         LabelCheck(), "sample")
    assert "No label leads" in tie and "Run with the Kaggle data" in tie


def test_negation_shares_matches_whole_words_and_nt():
    df = frame([("p", "He didn't go.", 0), ("p", "Nothing happened.", 1),
                ("p", "A knotty nose.", 2), ("p", "Nobody is not here.", 2)])
    assert negation_shares(df) == {"entailment": 1.0, "neutral": 1.0, "contradiction": 0.5}
    assert negation_shares(df[df.label == 2])["entailment"] is None


def test_label_check_pair_found_only_when_present(two_datasets):
    small, big = two_datasets
    check = find_label_check_pair(small)
    assert check == LabelCheck() and check.status == "absent"
    assert "could not be made" in evidence(small)
    assert find_label_check_pair(big) == LabelCheck("train", 1)
    assert find_label_check_pair(big).status == "neutral"
    assert "is labelled 1 in this data (train), so 1 means neutral" in evidence(big)
    swapped = toy_data(3, negate=2)
    swapped.splits["train"] = pd.concat([frame([(*LABEL_CHECK_PAIR, 2)]), swapped.train])
    check = find_label_check_pair(swapped)
    assert check.label == 2 and check.status == "differs"
    assert "labelled 2 (contradiction)" in evidence(swapped)
    assert "label order differs" in evidence(swapped)


def test_q2_numbers_follow_the_facts():
    small, big = fake_model_facts(2, 64, 1.0958), fake_model_facts(6, 384, 0.7321)
    a, b = q2_answer(small), q2_answer(big)
    assert a != b
    for facts, text in ((small, a), (big, b)):
        assert QUESTIONS["Q2"][0] not in text  # the notebook's markdown asks it, once
        assert f"{facts.total_params:,}" in text
        assert f"`[4, {facts.batch_shape[1]}]`" in text and "`[4, 3]`" in text
        assert f"`max_length = {facts.max_length}`" in text
        assert f"{facts.loss:.3f}" in text
        lines = korean_summary_lines(text)
        assert len(lines) == 1 and f"{facts.n_layers}층" in lines[0]
    assert "1.096" in a and "0.732" in b
    assert "hidden size 64" in a and "hidden size 384" in b
    # About a uniform guess within 0.1 of ln 3 (wording.UNIFORM_TOLERANCE), better below.
    assert "guesses about uniformly" in a and "guesses about uniformly" not in b
    assert "better than a uniform guess" in b
    worse = q2_answer(fake_model_facts(2, 64, 1.35))
    assert "does worse than a uniform guess" in worse and "better than" not in worse


def test_q2_says_which_tokenizer_keys_are_dropped():
    facts = fake_model_facts(2, 64, 1.1)
    facts = replace(facts, tokenizer_keys=("input_ids", "token_type_ids", "attention_mask"))
    text = " ".join(q2_answer(facts).split())
    assert "does not accept `token_type_ids`, so only `input_ids`, `attention_mask` are passed." \
        in text
    both = replace(facts, forward_keys=facts.tokenizer_keys)
    text = " ".join(q2_answer(both).split())
    assert "accepts all of them, `token_type_ids` included (it marks" in text


def test_q2_names_a_stand_in():
    facts = replace(fake_model_facts(2, 64, 1.1),
                    model=CheckpointFacts("/m", "m", "a note", reference=False, random=False))
    text = " ".join(q2_answer(facts).split())
    assert "This run used `m` in place of `distilbert-base-uncased`: it is a note." in text
    assert "randomly initialised" not in text
    assert "randomly initialised stand-in" in q2_answer(fake_model_facts(2, 64, 1.1))
    reference = replace(facts, model=checkpoint_facts("distilbert-base-uncased"))
    assert "This run used" not in q2_answer(reference)


def test_model_facts_on_the_tiny_model():
    from mnli_lesson.checkpoints import build_tiny_checkpoint
    from mnli_lesson.models import build_model, load_tokenizer
    from mnli_lesson.writeups import EXAMPLE_PAIRS, model_facts

    build_tiny_checkpoint()
    cfg = cfg_for()
    model, tokenizer = build_model("tiny", seed=cfg.seed), load_tokenizer(cfg.model)
    model.train()
    facts = model_facts(model, tokenizer, cfg)
    json.dumps(facts.as_dict(), allow_nan=False)
    assert facts.logits_shape == (len(EXAMPLE_PAIRS), len(LABELS))
    assert facts.batch_shape == (len(EXAMPLE_PAIRS), max(facts.pair_lengths))
    assert facts.single_shape == (1, facts.pair_lengths[0])
    assert facts.padding_zeros == sum(max(facts.pair_lengths) - n for n in facts.pair_lengths)
    assert facts.id2label == {str(i): name for i, name in enumerate(LABELS)}
    assert set(facts.forward_keys) <= set(facts.tokenizer_keys)
    head = facts.parameters["pre_classifier"].total + facts.parameters["classifier"].total
    assert facts.trainable_when_frozen == head and facts.model.random
    assert math.isfinite(facts.loss) and facts.loss > 0
    assert model.training  # the forward pass left the mode as it found it
    text = q2_answer(facts)
    assert f"`[{facts.batch_shape[0]}, {facts.batch_shape[1]}]`" in text
    assert "stand-in" in text


@pytest.mark.parametrize("key, notebook", [("Q1", "01_data"), ("Q2", "02_model_io"),
                                           ("Q3", "04_pretrained_vs_scratch")])
def test_each_question_is_asked_verbatim_in_its_notebook(key, notebook):
    """Students see the question in markdown (their version replaces the generated answer)."""
    import nbformat

    nb = nbformat.read(f"notebooks/{notebook}.ipynb", as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert question_block(key) in markdown
