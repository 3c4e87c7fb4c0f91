"""The assignment's questions and the answers, rendered from numbers a run computed.

Nothing here holds a result: every function takes facts or results and returns Markdown,
so when a run changes, the text changes with it.
"""

from __future__ import annotations

#: The assignment's three questions, verbatim (Korean), with an English translation.
QUESTIONS: dict[str, tuple[str, str]] = {
    "Q1": ("어떤 task를 선택하셨나요?", "Which task did you choose?"),
    "Q2": (
        "모델은 어떻게 설계하셨나요? 설계한 모델의 입력과 출력 형태가 어떻게 되나요?",
        "How did you design the model? What are the shapes of its inputs and outputs?",
    ),
    "Q3": (
        "실제로 pre-trained 모델을 fine-tuning했을 때 loss curve은 어떻게 그려지나요? "
        "그리고 pre-train 하지 않은 Transformer를 학습했을 때와 어떤 차이가 있나요?",
        "When a pre-trained model is actually fine-tuned, what does its loss curve look like? "
        "And how does it differ from training a Transformer that was not pre-trained?",
    ),
}


def question_block(key: str) -> str:
    """The question as a Markdown quote: Korean first, then the English translation."""
    korean, english = QUESTIONS[key]
    return f"**{key}.** {korean}\n\n> *{english}*"


# ----- Q1 and Q2 (notebooks 01 and 02) ------------------------------------------------------

import math  # noqa: E402  (kept in this section so the Q3 section can be edited separately)
import typing  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mnli_lesson.data import (  # noqa: E402
    COLUMNS,
    KAGGLE_DATASET,
    LABELS,
    choose_max_length,
    label_counts,
    length_summary,
)

if typing.TYPE_CHECKING:
    from mnli_lesson.config import LessonConfig
    from mnli_lesson.data import MnliData

#: Published sizes of MultiNLI (Williams et al., 2018), quoted next to the sizes a run used.
MNLI_PUBLISHED_SIZES: dict[str, int] = {
    "train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832,
}
#: DistilBERT against BERT-base as Sanh et al. (2019) report it: share of parameters saved,
#: share of inference time saved, share of BERT's GLUE score kept.
DISTILBERT_PUBLISHED: dict[str, float] = {"smaller": 0.40, "faster": 0.60, "glue_kept": 0.97}
#: MultiNLI's genres: training and validation_matched share the first five; mismatched the rest.
MATCHED_GENRES = ("fiction", "government reports", "Slate magazine", "telephone speech",
                  "travel guides")
MISMATCHED_GENRES = ("the 9/11 Commission report", "face-to-face speech", "letters",
                     "Oxford University Press non-fiction", "Verbatim magazine")
#: Negation cues in a hypothesis (Gururangan et al., 2018): whole words, plus the "n't" ending.
NEGATION_PATTERN = (
    r"\b(?:no|not|never|nobody|nothing|none|nowhere|neither|nor|cannot)\b|n['\u2019]t\b"
)
#: The first training pair of the Kaggle export: labelled 1 there, and neutral by its meaning.
LABEL_CHECK_PAIR = (
    "Conceptually cream skimming has two basic dimensions - product and geography.",
    "Product and geography are what make cream skimming work.",
)
#: Pairs model_facts encodes when it is given none (written for this project, lengths differ).
EXAMPLE_PAIRS: tuple[tuple[str, str, int], ...] = (
    ("A dog sleeps.", "An animal rests.", 0),
    ("The museum opens at nine on weekdays and at ten on Sundays.",
     "The museum is closed on Sundays.", 2),
    ("She moved to the coast after retiring from her teaching job.",
     "She missed teaching.", 1),
    ("After three weeks of rain, the river rose over its banks and the town council closed "
     "the lower bridge until engineers could inspect it.",
     "The lower bridge was closed because of flooding.", 0),
)


def _pct(share: float | None, digits: int = 1) -> str:
    return "n/a" if share is None else f"{100 * share:.{digits}f}%"


def _pct_sig(share: float) -> str:
    """A percentage to two significant digits (0.0051%, 2.5%), for shares of any size."""
    return f"{100 * share:.2g}%"


def _model_short(checkpoint: str) -> str:
    return checkpoint.rstrip("/").rsplit("/", 1)[-1]


def _source_kind(source: str) -> str:
    return source if source in ("sample", "kaggle") else "folder"


def _source_phrase(facts: dict) -> str:
    kind = facts["source_kind"]
    if kind == "sample":
        return ("the built-in sample (pairs written for this project in MNLI's format, not MNLI "
                "itself: its statistics only show the method)")
    if kind == "kaggle":
        return f"the Kaggle export of MultiNLI (`{KAGGLE_DATASET}`, fetched with `kagglehub`)"
    return f"the CSV folder `{facts['source']}`"


def _model_note(checkpoint: str) -> str:
    """What the answer must say about a stand-in for ``distilbert-base-uncased``."""
    if checkpoint == "distilbert-base-uncased":
        return ""
    if checkpoint == "tiny":
        return ("This run used the `tiny` stand-in instead: a small, randomly initialised "
                "DistilBERT whose vocabulary was learnt from the built-in sample, so its token "
                "counts and outputs only exercise the code.")
    note = f"This run used `{checkpoint}` in its place (its own tokenizer included)."
    if "minilm" in checkpoint.lower():
        note += (" That checkpoint is all-MiniLM-L6-v2, a BERT-family sentence-embedding model "
                 "that saw SNLI and MNLI pairs during its own training (without NLI labels as "
                 "classes), so its head start is larger than a plain pre-trained encoder's; its "
                 "WordPiece vocabulary is the one `distilbert-base-uncased` uses.")
    return note


def negation_shares(df: pd.DataFrame) -> dict[str, float | None]:
    """Per label, the share of hypotheses with a negation word (None for an absent label)."""
    has = df["hypothesis"].astype(str).str.contains(NEGATION_PATTERN, case=False, regex=True)
    shares = has.groupby(df["label"].to_numpy()).mean()
    return {name: (float(shares[i]) if i in shares.index else None)
            for i, name in enumerate(LABELS)}


def find_label_check_pair(data: MnliData) -> dict[str, object]:
    """Where the "cream skimming" pair is in ``data`` and its label; ``found`` False if absent."""

    def norm(text: object) -> str:
        return " ".join(str(text).lower().split())

    premise, hypothesis = (norm(t) for t in LABEL_CHECK_PAIR)
    for split, df in data.splits.items():
        candidates = df[df["hypothesis"].astype(str).str.contains("cream skimming", case=False)]
        for _, row in candidates.iterrows():
            if norm(row["hypothesis"]) == hypothesis and norm(row["premise"]) == premise:
                label = int(row["label"])
                return {"found": True, "split": split, "label": label,
                        "label_name": LABELS[label]}
    return {"found": False, "split": None, "label": None, "label_name": None}


def data_facts(
    data: MnliData, lengths: np.ndarray, cfg: LessonConfig, *, percentile: float = 99.0,
    multiple: int = 8,
) -> dict:
    """JSON-ready facts about the loaded data (``lengths``: token counts of the training pairs
    the profile uses) for Q1 and the closing summary."""
    lengths = np.asarray(lengths)
    chosen, share = choose_max_length(lengths, percentile, multiple)
    sizes = data.sizes()
    used = {"train": sizes["train"] if cfg.train_size is None
            else min(cfg.train_size, sizes["train"])}
    for split in ("validation_matched", "validation_mismatched"):
        used[split] = sizes[split] if cfg.eval_size is None else min(cfg.eval_size, sizes[split])
    genres = None
    if all("genre" in df.columns for df in data.splits.values()):
        genres = {s: {str(g): int(n) for g, n in df["genre"].value_counts().items()}
                  for s, df in data.splits.items()}
    return {
        "profile": cfg.profile,
        "source": str(data.source),
        "source_kind": _source_kind(str(data.source)),
        "tokenizer": str(cfg.model),
        "sizes": sizes,
        "used": used,
        "label_counts": {s: label_counts(df) for s, df in data.splits.items()},
        "dropped": {s: dict(d) for s, d in data.dropped.items()},
        "genres": genres,
        "lengths": {"n_pairs": int(lengths.size), **length_summary(lengths)},
        "max_length": {
            "chosen": chosen, "percentile": float(percentile), "multiple": multiple,
            "truncated_share": share, "configured": cfg.max_length,
            "configured_truncated_share": float((lengths > cfg.max_length).mean()),
        },
        "negation_share": negation_shares(data.train),
        "label_check": find_label_check_pair(data),
    }


def label_evidence(
    shares: dict[str, float | None], check: dict[str, object], source: str
) -> str:
    """Markdown: what the data says about the label order, from ``negation_shares`` and
    ``find_label_check_pair`` of the data loaded from ``source``."""
    listed = ", ".join(f"{_pct(shares[name])} for {i} ({name})" for i, name in enumerate(LABELS))
    known = {k: v for k, v in shares.items() if v is not None}
    top = max(known, key=known.get) if known else None
    text = f"Hypotheses with a negation word (*not*, *no*, *never*, *n't*, …): {listed}. "
    if top == "contradiction":
        text += (
            "Crowd-workers asked for a hypothesis that *contradicts* the premise often just negate "
            "it (Gururangan et al., 2018, *Annotation Artifacts in Natural Language Inference "
            "Data*), so the label with the most negations is the contradiction label: here that "
            f"is {LABELS.index('contradiction')}, not 1 as the original notebook claimed."
        )
    else:
        why = (" The built-in sample was written for this project, not by MNLI's crowd-workers, "
               "whose habit of negating the premise this check relies on (Gururangan et al., "
               "2018)." if _source_kind(str(source)) == "sample" else "")
        text += (f"On this data the label with the most negations is {top}, not contradiction, so "
                 f"this statistic gives no evidence either way.{why} Run with the Kaggle data (or "
                 "`MNLI_LESSON_DATA`) to see the pattern.")
    premise, hypothesis = LABEL_CHECK_PAIR
    pair = f"“{premise}” / “{hypothesis}”"
    if check["found"] and check["label"] == LABELS.index("neutral"):
        text += (
            f"\n\nThe first pair of the Kaggle training file, {pair}, is labelled "
            f"{check['label']} in this data ({check['split']}). The premise names the two "
            "dimensions of cream skimming but says nothing about what makes it *work*: the "
            f"hypothesis may or may not be true, so the pair is neutral and {check['label']} means "
            "neutral."
        )
    elif check["found"]:
        text += (
            f"\n\nThe first pair of the Kaggle training file, {pair}, is neutral by its meaning "
            f"but labelled {check['label']} ({check['label_name']}) in this data "
            f"({check['split']}): this copy's label order differs, so check it before training."
        )
    else:
        text += (
            f"\n\nA second check, the first pair of the Kaggle training file ({pair}, neutral by "
            "its meaning: the premise says nothing about what makes cream skimming work), could "
            "not be made: that pair is not in this data."
        )
    return text


def q1_answer(facts: dict) -> str:
    """Markdown answer to Q1 (task, data, lengths, model) from ``data_facts``."""
    sizes, used, counts = facts["sizes"], facts["used"], facts["label_counts"]
    dropped = {reason: sum(d.get(reason, 0) for d in facts["dropped"].values())
               for reason in ("empty_pair", "no_gold_label")}
    train_total = sum(counts["train"].values())
    shares = ", ".join(f"{name} {_pct(n / train_total)}" for name, n in counts["train"].items())
    lengths, cut = facts["lengths"], facts["max_length"]
    ds = DISTILBERT_PUBLISHED
    pub = MNLI_PUBLISHED_SIZES
    if facts["genres"]:
        genre_line = "This copy names the genres: " + "; ".join(
            f"{split}: {', '.join(g)}" for split, g in facts["genres"].items()) + "."
    else:
        genre_line = "This copy of the data has no genre column."
    ids = ", ".join(f"{i} = {name}" for i, name in enumerate(LABELS))
    evidence = label_evidence(facts["negation_share"], facts["label_check"], facts["source"])
    subset = "all" if used["train"] == sizes["train"] else "a stratified, seeded subset"
    korean = (
        "**한 줄 요약:** 전제·가설 문장 쌍을 함의·중립·모순으로 분류하는 MNLI를 골랐고, "
        f"이번 실행(`{facts['profile']}` 프로필)은 학습 {used['train']:,}쌍과 검증 "
        f"{used['validation_matched']:,} / {used['validation_mismatched']:,}쌍을 쓰며, 길이 "
        f"{cut['percentile']:g} 백분위수를 {cut['multiple']}의 배수로 올린 "
        f"`max_length = {cut['chosen']}`(잘리는 쌍 {_pct(cut['truncated_share'], 2)})로 "
        "DistilBERT를 미세조정한다"
        + ("." if facts["tokenizer"] == "distilbert-base-uncased"
           else f"(이번 실행은 `{_model_short(facts['tokenizer'])}`로 대신함).")
    )
    return f"""{question_block('Q1')}

**Task: MNLI (Multi-Genre Natural Language Inference).** Each example is a *premise* and a
*hypothesis*; the model decides whether the premise **entails** the hypothesis (it must be
true), is **neutral** towards it (it may or may not be true) or **contradicts** it (it cannot be
true). It is sentence-pair classification with {len(LABELS)} classes, numbered as in the Hugging
Face `multi_nli` export: {ids}.

{evidence}

**Data.** MultiNLI has {pub['train']:,} training pairs and {pub['validation_matched']:,} /
{pub['validation_mismatched']:,} matched / mismatched validation pairs (Williams et al., 2018).
Its premises come from written and spoken English of several genres: the training pairs and
*validation_matched* share five ({', '.join(MATCHED_GENRES)}), while *validation_mismatched*
comes from five others ({', '.join(MISMATCHED_GENRES)}), so its accuracy measures transfer to
genres never seen in training. {genre_line} The test splits carry no public labels (−1) and are
never trained or scored on. This run loaded {_source_phrase(facts)}: {sizes['train']:,} /
{sizes['validation_matched']:,} / {sizes['validation_mismatched']:,} train / matched / mismatched
pairs after cleaning, which dropped {dropped['empty_pair']:,} pairs with an empty side and
{dropped['no_gold_label']:,} without a gold label. The `{facts['profile']}` profile trains on
{used['train']:,} of them ({subset}) and scores {used['validation_matched']:,}
/ {used['validation_mismatched']:,}. Label shares in training: {shares}.

**Input length.** Encoded as `[CLS] premise [SEP] hypothesis [SEP]`, the {lengths['n_pairs']:,}
training pairs have {lengths['mean']:.1f} tokens on average (median {lengths['median']:.0f},
99th percentile {lengths['p99']:.0f}, longest {lengths['max']}). The {cut['percentile']:g}th
percentile rounded up to a multiple of {cut['multiple']} gives `max_length = {cut['chosen']}`,
which truncates {_pct(cut['truncated_share'], 2)} of the pairs (the profile's configured
`max_length = {cut['configured']}` truncates {_pct(cut['configured_truncated_share'], 2)}).

**Model: DistilBERT** (`distilbert-base-uncased`). BERT-style encoders are pre-trained on text
pairs and read premise and hypothesis together, every token attending to every other, which is
what judging a relation between two sentences needs. DistilBERT is BERT-base distilled into a
model {_pct(ds['smaller'], 0)} smaller and {_pct(ds['faster'], 0)} faster that keeps
{_pct(ds['glue_kept'], 0)} of BERT's score on the GLUE benchmark (Sanh et al., 2019), so it
fine-tunes on a laptop or a free Colab GPU. {_model_note(facts['tokenizer'])}

*Numbers from this run: profile `{facts['profile']}`, data `{facts['source']}`, tokenizer of
`{facts['tokenizer']}`.*

{korean}
"""


def model_facts(
    model, tokenizer, cfg: LessonConfig, pairs: pd.DataFrame | None = None
) -> dict:
    """JSON-ready facts about ``model`` for Q2: its shape, parameters, and one forward pass
    over ``pairs`` (columns premise, hypothesis, label; default ``EXAMPLE_PAIRS``)."""
    import torch

    from mnli_lesson.encoding import forward_inputs, make_collator
    from mnli_lesson.models import parameter_counts

    frame = pd.DataFrame(EXAMPLE_PAIRS, columns=list(COLUMNS)) if pairs is None else pairs
    config = model.config
    accepted = forward_inputs(model)
    features = [dict(tokenizer(p, h, truncation=True, max_length=cfg.max_length))
                for p, h in zip(frame["premise"], frame["hypothesis"], strict=True)]
    tokenizer_keys = list(features[0])
    used_keys = [k for k in tokenizer_keys if k in accepted]
    batch = make_collator(tokenizer)(
        [{k: f[k] for k in used_keys} | {"labels": int(y)}
         for f, y in zip(features, frame["label"], strict=True)]
    )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(**{k: v.to(device) for k, v in batch.items()})
    finally:
        model.train(was_training)
    prefix = getattr(model, "base_model_prefix", "")
    outside = sum(p.numel() for n, p in model.named_parameters()
                  if not n.startswith(prefix + "."))
    counts = parameter_counts(model)
    return {
        "profile": cfg.profile,
        "checkpoint": str(cfg.model),
        "model_class": type(model).__name__,
        "model_type": str(config.model_type),
        "n_layers": int(config.num_hidden_layers),
        "hidden_size": int(config.hidden_size),
        "n_heads": int(config.num_attention_heads),
        "ffn_size": int(getattr(config, "intermediate_size", None)
                        or getattr(config, "hidden_dim", 0)),
        "vocab_size": int(config.vocab_size),
        "max_positions": int(config.max_position_embeddings),
        "max_length": int(cfg.max_length),
        "id2label": {str(k): str(v) for k, v in config.id2label.items()},
        "parameters": counts,
        "trainable_when_frozen": int(outside),
        "tokenizer_keys": tokenizer_keys,
        "forward_keys": used_keys,
        "single_shape": [1, len(features[0]["input_ids"])],
        "pair_lengths": [len(f["input_ids"]) for f in features],
        "batch_shape": list(batch["input_ids"].shape),
        "padding_zeros": int((batch["attention_mask"] == 0).sum()),
        "logits_shape": list(out.logits.shape),
        "loss": float(out.loss),
        "chance_loss": math.log(len(LABELS)),
    }


def q2_answer(facts: dict) -> str:
    """Markdown answer to Q2 (design, inputs, outputs) from ``model_facts``."""
    params = facts["parameters"]
    parts = [p for p in params if p != "all"]
    table = "; ".join(f"{p} {params[p]['total']:,}" for p in parts)
    head = [p for p in parts if p not in ("embeddings", "encoder")]
    total = params["all"]["total"]
    frozen = facts["trainable_when_frozen"]
    keys = ", ".join(f"`{k}`" for k in facts["tokenizer_keys"])
    fwd = ", ".join(f"`{k}`" for k in facts["forward_keys"])
    left_out = [k for k in facts["tokenizer_keys"] if k not in facts["forward_keys"]]
    if left_out:
        keys_note = (f"its `forward` does not accept {', '.join(f'`{k}`' for k in left_out)}, "
                     f"so only {fwd} are passed")
    else:
        keys_note = "its `forward` accepts all of them"
    if "token_type_ids" in facts["forward_keys"]:
        keys_note += (", `token_type_ids` included (it marks the premise's tokens 0 and the "
                      "hypothesis's 1)")
    labels = ", ".join(f"{k} = {v}" for k, v in facts["id2label"].items())
    gap = facts["loss"] - facts["chance_loss"]
    loss_note = ", so the model still guesses about uniformly" if abs(gap) < 0.1 else ""
    n_pairs = facts["batch_shape"][0]
    n_classes = facts["logits_shape"][-1]
    lens = ", ".join(map(str, facts["pair_lengths"]))
    korean = (
        f"**한 줄 요약:** `{facts['model_class']}`({facts['n_layers']}층, hidden "
        f"{facts['hidden_size']}, 파라미터 {total:,}개)에 `[CLS] 전제 [SEP] 가설 [SEP]`로 "
        f"인코딩한 {'·'.join(f'`{k}`' for k in facts['forward_keys'])}(`[batch, seq_len]`, 예: "
        f"`{facts['batch_shape']}`)를 넣으면 logits `[batch, {facts['logits_shape'][-1]}]`"
        f"(예: `{facts['logits_shape']}`)가 나오고, softmax로 함의·중립·모순 확률을 얻는다."
    )
    return f"""{question_block('Q2')}

**Design.** `{facts['model_class']}` from `{facts['checkpoint']}`: a Transformer encoder,
with the checkpoint's weights, under a new classification head. The encoder has
{facts['n_layers']} layers of hidden size {facts['hidden_size']} with {facts['n_heads']}
attention heads and a {facts['ffn_size']}-wide feed-forward block, over a
{facts['vocab_size']:,}-token WordPiece vocabulary and at most {facts['max_positions']}
positions. The head takes the encoder's output for the first token, `[CLS]`, through
{' → '.join(f'`{p}`' for p in head)} to {n_classes} scores, one per label ({labels}).
Parameters by part: {table}; {total:,} in all. Full fine-tuning trains every one of them;
freezing the encoder (`model.base_model`) leaves {frozen:,} trainable
({_pct_sig(frozen / total)}), which is feature extraction rather than fine-tuning.
{_model_note(facts['checkpoint'])}

**Input.** The tokenizer joins a pair into `[CLS] premise [SEP] hypothesis [SEP]` and returns
{keys}; {keys_note}. Each is an integer tensor of shape `[batch, seq_len]`: one pair gives
`{facts['single_shape']}`, and a batch of {n_pairs} pairs ({lens}
tokens long) padded to its longest gives `{facts['batch_shape']}`, with `attention_mask` 1 on
real tokens and 0 on the {facts['padding_zeros']} padding positions. Pairs longer than
`max_length = {facts['max_length']}` are truncated.

**Output.** `logits` of shape `{facts['logits_shape']}`, i.e. `[batch, {n_classes}]`:
one unnormalised score per label. Softmax turns each row into probabilities that sum to 1;
the argmax, named through `id2label`, is the prediction. Given `labels`, the model also returns
the mean cross-entropy loss, {facts['loss']:.3f} on that batch against ln {len(LABELS)} ≈
{facts['chance_loss']:.3f} for a uniform guess{loss_note}.

*Numbers from this run: profile `{facts['profile']}`, model `{facts['checkpoint']}`.*

{korean}
"""


# ----- Q3 and the closing summary (notebook 04) ---------------------------------------------

from math import ceil, isfinite  # noqa: E402
from statistics import fmean  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from mnli_lesson.plots import CHANCE_LOSS, smooth  # noqa: E402

if TYPE_CHECKING:
    from mnli_lesson.experiments import Comparison

#: Smoothing the text reads the loss curves with: the same as ``plots.plot_loss_curves``.
LOSS_SMOOTHING = 0.9
#: How far below ln 3 a smoothed loss must fall before the text says it "left" chance level
#: (the smoothed curve wobbles a few thousandths around ln 3 while nothing is learnt).
CHANCE_MARGIN = 0.05
#: Training pairs of the full MultiNLI training set (Williams et al., 2018).
FULL_TRAIN_PAIRS = 392_702
#: Published MNLI accuracies (%) and where they come from, quoted next to this run's numbers.
PUBLISHED: dict[str, tuple[float, str]] = {
    "distilbert_matched_dev": (82.2, "Sanh et al., 2019"),
    "bert_base_matched_test": (84.6, "Devlin et al., 2019"),
    "bert_base_mismatched_test": (83.4, "Devlin et al., 2019"),
    "transformer_no_pretraining": (75.7, "Radford et al., 2018, Table 5"),
}
_SPLITS = ("validation_matched", "validation_mismatched")


def _acc(share: float | None) -> str:
    """An accuracy as a percentage with one decimal (``n/a`` when absent)."""
    return "n/a" if share is None else f"{100 * share:.1f}%"


def _points(diff: float) -> str:
    """A difference of two accuracies in percentage points, signed."""
    return f"{100 * diff:+.1f}"


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)


def _run(comparison: Comparison, slug: str) -> dict:
    if slug not in comparison.runs:
        raise KeyError(f"comparison {comparison.name!r} has no run {slug!r} "
                       f"(it has {', '.join(comparison.runs) or 'none'})")
    return comparison.runs[slug]


def loss_facts(history: list[dict], *, alpha: float = LOSS_SMOOTHING) -> dict:
    """The shape of one per-step loss curve, as numbers.

    Where it starts and ends, its mean over the first and the last epoch, when its smoothed
    curve (``plots.smooth``, as plotted) first falls ``CHANCE_MARGIN`` below ln 3, when it is
    halfway down, and which share of its whole drop the first epoch made.
    """
    records = [r for r in history if _is_finite(r.get("loss"))]
    if not records:
        return {"steps": 0, "first_loss": None, "final_smoothed": None, "min_smoothed": None,
                "first_epoch_mean": None, "last_epoch_mean": None, "epochs": 0,
                "leaves_chance_step": None, "leaves_chance_epoch": None,
                "half_drop_step": None, "first_epoch_drop_share": None}
    losses = [float(r["loss"]) for r in records]
    smoothed = smooth(losses, alpha)
    epochs = max(1, ceil(float(records[-1]["epoch"]) - 1e-9))
    in_first = [i for i, r in enumerate(records) if float(r["epoch"]) <= 1 + 1e-9]
    in_last = [i for i, r in enumerate(records) if float(r["epoch"]) > epochs - 1 + 1e-9]
    leaves = next((i for i, s in enumerate(smoothed) if s < CHANCE_LOSS - CHANCE_MARGIN), None)
    drop = smoothed[0] - smoothed[-1]
    half = None
    share = None
    if drop > CHANCE_MARGIN:
        half = next(i for i, s in enumerate(smoothed) if s <= smoothed[0] - drop / 2)
        end_first = smoothed[in_first[-1]] if in_first else smoothed[0]
        share = min(1.0, max(0.0, (smoothed[0] - end_first) / drop))
    return {
        "steps": len(records),
        "first_loss": losses[0],
        "final_smoothed": smoothed[-1],
        "min_smoothed": min(smoothed),
        "first_epoch_mean": float(fmean([losses[i] for i in in_first])) if in_first else None,
        "last_epoch_mean": float(fmean([losses[i] for i in in_last])) if in_last else None,
        "epochs": epochs,
        "leaves_chance_step": None if leaves is None else int(records[leaves]["step"]),
        "leaves_chance_epoch": None if leaves is None else float(records[leaves]["epoch"]),
        "half_drop_step": None if half is None else int(records[half]["step"]),
        "first_epoch_drop_share": share,
    }


def loss_crossover(ahead: list[dict], behind: list[dict], *,
                   alpha: float = LOSS_SMOOTHING) -> dict:
    """Compare two smoothed loss curves step by step: when ``ahead``'s first dips under
    ``behind``'s, from which step on it stays under to the end, and the gaps at the end of the
    first epoch and at the last common step (``behind`` minus ``ahead``)."""
    curves = []
    for history in (ahead, behind):
        records = [r for r in history if _is_finite(r.get("loss"))]
        values = smooth([float(r["loss"]) for r in records], alpha) if records else []
        pairs = zip(records, values, strict=True)
        curves.append({int(r["step"]): (float(r["epoch"]), v) for r, v in pairs})
    a, b = curves
    common = sorted(set(a) & set(b))
    under = [a[s][1] < b[s][1] for s in common]
    first_under = next((s for s, ok in zip(common, under, strict=True) if ok), None)
    stays_from = None
    for s, ok in zip(reversed(common), reversed(under), strict=True):
        if not ok:
            break
        stays_from = s
    first_epoch = [s for s in common if a[s][0] <= 1 + 1e-9]
    return {
        "steps": len(common),
        "first_under_step": first_under,
        "stays_under_from_step": stays_from,
        "gap_end_first_epoch": (b[first_epoch[-1]][1] - a[first_epoch[-1]][1])
        if first_epoch else None,
        "gap_final": (b[common[-1]][1] - a[common[-1]][1]) if common else None,
    }


def accuracy_facts(run: dict) -> dict:
    """Final and per-epoch accuracies of one run (epoch 0 = before training, when scored)."""
    final = {split: float(run["final"][split]["accuracy"]) for split in _SPLITS}
    per_epoch = [(int(e["epoch"]), float(e["validation_matched"])) for e in run["epochs"]
                 if _is_finite(e.get("validation_matched"))]
    before = next((acc for epoch, acc in per_epoch if epoch == 0), None)
    return {"matched": final["validation_matched"],
            "mismatched": final["validation_mismatched"],
            "macro_f1": float(run["final"]["validation_matched"].get("macro_f1", float("nan"))),
            "n_scored": int(run["final"]["validation_matched"].get("n", 0)),
            "before": before, "per_epoch": per_epoch}


def sweep_facts(sweep: Comparison, split: str = "validation_matched") -> dict:
    """What the data-efficiency sweep says: accuracy per size for both initialisations,
    the steps each size trained, and where the pre-trained model overtakes scratch's best."""
    points = sweep.sweep_points(split)
    pre, scr = dict(points.get("pretrained", [])), dict(points.get("scratch", []))
    sizes = sorted(set(pre) & set(scr))
    steps: dict[int, int] = {}
    epochs: dict[int, int] = {}
    for r in sweep.runs.values():
        n = int(r["train_size"])
        steps[n] = min(steps.get(n, len(r["history"])), len(r["history"]))
        epochs[n] = int(r["epochs_planned"])
    some_config = next(iter(sweep.runs.values()))["config"] if sweep.runs else {}
    facts = {"sizes": sizes, "pretrained": {n: pre[n] for n in sizes},
             "scratch": {n: scr[n] for n in sizes}, "steps": steps, "epochs": epochs,
             "min_steps": min(steps.values()) if steps else 0,
             "sweep_min_steps": some_config.get("sweep_min_steps"),
             "profile": sweep.profile, "model": sweep.model, "data": sweep.data,
             "scratch_best": None, "scratch_best_n": None, "beats_scratch_best_n": None,
             "gaps": {n: pre[n] - scr[n] for n in sizes}}
    if sizes:
        best_n = max(sizes, key=lambda n: (scr[n], -n))
        facts["scratch_best"], facts["scratch_best_n"] = scr[best_n], best_n
        facts["beats_scratch_best_n"] = next((n for n in sizes if pre[n] > scr[best_n]), None)
    return facts


def _setup_line(run: dict, comparison: Comparison) -> str:
    c = run["config"]
    steps = len(run["history"])
    per_epoch = ceil(int(run["train_size"]) / int(c["batch_size"]))
    return (f"*Numbers from this run: profile `{comparison.profile}`, model `{comparison.model}`, "
            f"data `{comparison.data}`; {int(run['train_size']):,} training pairs, "
            f"{run['epochs_planned']} epochs of {per_epoch:,} steps ({steps:,} optimiser steps, "
            f"batch {c['batch_size']}), peak learning rate {c['lr']:g} with "
            f"{c['warmup_ratio']:.0%} warm-up for both runs, seed {c['seed']}, "
            f"{run['precision']} on {run['device']}; "
            f"{accuracy_facts(run)['n_scored']:,} pairs scored per validation split.*")


def model_caveats(model: str, data: str, profile: str) -> str:
    """What a reader must know about the model and data that produced the numbers."""
    notes = []
    if model == "tiny":
        notes.append(
            f"**Read these numbers as a smoke test.** On the `{profile}` profile the "
            "\"pre-trained\" checkpoint is itself a tiny, randomly initialised DistilBERT: nothing "
            "was pre-trained, so both runs start from random weights and any difference between "
            "them is noise. The explanations describe what pre-training does with a real "
            "checkpoint (run the `cpu` or `gpu` profile to see it); the numbers are this run's.")
    if "minilm" in model.lower():
        notes.append(
            f"**About the checkpoint.** `{model}` (all-MiniLM-L6-v2) stands in for "
            "`distilbert-base-uncased` because the Hugging Face Hub cannot be reached here. It is "
            "a sentence-embedding fine-tune of MiniLM that saw SNLI and MNLI training pairs "
            "(contrastively, without the NLI labels as classes), so its head start over a random "
            "copy is larger than plain pre-training would give.")
    if data == "sample":
        notes.append("The data is the built-in sample: pairs written for this project in "
                     "MNLI's format, a few hundred of them, not MNLI itself.")
    return "\n\n".join(notes)


def _leaves(facts: dict, total_steps: int) -> str:
    if facts["leaves_chance_step"] is None:
        return (f"Its smoothed curve never fell {CHANCE_MARGIN} below ln 3 in this run: it "
                "learnt next to nothing that lowers the loss.")
    text = (f"Its smoothed curve falls {CHANCE_MARGIN} below ln 3 at step "
            f"{facts['leaves_chance_step']:,} of {total_steps:,} (epoch "
            f"{facts['leaves_chance_epoch']:.2f}).")
    if facts["half_drop_step"] is not None:
        text += f" Half of its whole drop is done by step {facts['half_drop_step']:,}."
    return text


def _shape(facts: dict) -> str:
    share = facts["first_epoch_drop_share"]
    if share is None:
        return "Over the whole run it hardly drops at all."
    if share >= 0.5:
        return (f"{share:.0%} of its whole drop happens in the first epoch: a steep fall, then "
                "a long, flatter tail. That is the typical fine-tuning curve: the encoder already "
                "represents the sentences, so most of the work is teaching the new head to read "
                "it, and later epochs refine.")
    amount = "Almost none" if share < 0.005 else f"Only {share:.0%}"
    return (f"{amount} of its whole drop happens in the first epoch: here the loss falls late, "
            "after a plateau, rather than right away.")


def _crossover(cross: dict) -> str:
    stays = cross["stays_under_from_step"]
    if stays is None:
        return ("The pre-trained model's smoothed loss is not below the scratch model's at the "
                "last step of this run.")
    if stays == 1:
        return ("The pre-trained model's smoothed loss is below the scratch model's at every "
                "step.")
    return (f"The pre-trained model's smoothed loss is below the scratch model's from step "
            f"{stays:,} of {cross['steps']:,} to the end.")


def _trace(per_epoch: list[tuple[int, float]]) -> str:
    return " → ".join(_acc(acc) for _, acc in per_epoch) or "not scored per epoch"


def _sweep_paragraph(sweep: Comparison | None, comparison: Comparison, cfg: LessonConfig,
                     sweep_note: str | None) -> tuple[str, dict | None]:
    if sweep is None:
        sizes = ", ".join(f"{n:,}" for n in cfg.sweep_sizes)
        return ("**How much data does pre-training save?** The data-efficiency sweep (training "
                f"sizes {sizes}) was not run this time and no reference results were loaded, so "
                "this answer covers only the profile's own training subset."), None
    f = sweep_facts(sweep)
    origin = ""
    other = (f["profile"], f["model"], f["data"]) != (comparison.profile, comparison.model,
                                                      comparison.data)
    if sweep_note:
        origin = f"{sweep_note} "
    if other:
        origin += (f"These sweep results come from another run: profile `{f['profile']}`, "
                   f"model `{f['model']}`, data `{f['data']}`. ")
    if not f["sizes"]:
        return (f"**How much data does pre-training save?** {origin}The sweep holds no size "
                "scored for both initialisations."), f
    rows = "; ".join(f"{n:,} pairs: {_acc(f['pretrained'][n])} vs {_acc(f['scratch'][n])}"
                     for n in f["sizes"])
    asked = f" ({f['sweep_min_steps'] or cfg.sweep_min_steps} asked for)"
    text = (f"**How much data does pre-training save?** {origin}Matched accuracy, pre-trained vs "
            f"scratch, by training pairs: {rows}. Every point trained for at least "
            f"{f['min_steps']:,} optimiser steps{asked}, small sets for more epochs, so a small "
            "point measures too little data, not too few updates. ")
    beats, best, best_n = f["beats_scratch_best_n"], f["scratch_best"], f["scratch_best_n"]
    if beats is not None:
        ratio = best_n / beats
        more = f", {ratio:.0f}× as many pairs" if ratio >= 1.5 else ""
        text += (f"With {beats:,} pairs the pre-trained model ({_acc(f['pretrained'][beats])}) "
                 f"already beats the best the scratch model reached at any size "
                 f"({_acc(best)} with {best_n:,} pairs{more}). ")
    else:
        text += (f"At no size did the pre-trained model beat the scratch model's best "
                 f"({_acc(best)} with {best_n:,} pairs). ")
    small, large = f["sizes"][0], f["sizes"][-1]
    text += (f"The gap is {_points(f['gaps'][small])} points at {small:,} pairs and "
             f"{_points(f['gaps'][large])} at {large:,}.")
    return text, f


def _published(train_pairs: int, gap_matched: float, steps: int, pre_matched: float) -> str:
    d, _ = PUBLISHED["distilbert_matched_dev"]
    bm, _ = PUBLISHED["bert_base_matched_test"]
    bmm, _ = PUBLISHED["bert_base_mismatched_test"]
    t, _ = PUBLISHED["transformer_no_pretraining"]
    return (
        f"**Why the gap depends on how much labelled data there is.** With all "
        f"{FULL_TRAIN_PAIRS:,} training pairs, DistilBERT reaches {d}% on MNLI-matched dev "
        f"({PUBLISHED['distilbert_matched_dev'][1]}) and BERT-base {bm} / {bmm}% on the matched / "
        f"mismatched test sets ({PUBLISHED['bert_base_matched_test'][1]}), while a 12-layer "
        f"Transformer trained on MNLI without pre-training still reaches {t}% "
        f"({PUBLISHED['transformer_no_pretraining'][1]}). With hundreds of thousands of labelled "
        "pairs a network can learn much of the language it needs from the task itself, so "
        f"pre-training is worth some {d - t:.1f} points there (different architectures, so only "
        f"roughly). This run trained on {train_pairs:,} pairs, {train_pairs / FULL_TRAIN_PAIRS:.2%}"
        " of that: far too few to learn word meanings, syntax and how a hypothesis relates to a "
        "premise from labels alone, which is what pre-training on billions of words of "
        "unlabelled text supplies (BERT and DistilBERT: English Wikipedia and BookCorpus, about "
        "3.3 billion words). So with little data expect a far larger gap: a randomly initialised "
        "model stays near chance while a pre-trained one climbs well above it. In this run the "
        f"gap is {_points(gap_matched)} points on matched"
        + (", larger than the full-data difference. " if 100 * gap_matched > d - t + 1 else
           f", no larger than the full-data difference: with only {steps:,} optimiser steps the "
           f"pre-trained model is itself far from trained ({_acc(pre_matched)} on matched, "
           f"against {d}% with full data), so this run measures too few updates as much as the "
           "value of pre-training. ")
        + "The scratch run used the pre-trained "
        "run's learning rate, which is fair in the sense of the same recipe; a learning rate "
        "tuned for scratch might do somewhat better, but the published full-data numbers above "
        "show the gap persists."
    )


def q3_answer(comparison: Comparison, sweep: Comparison | None, cfg: LessonConfig, *,
              sweep_note: str | None = None) -> str:
    """Markdown answer to Q3 from the ``pretrained-vs-scratch`` comparison and, when given, the
    ``data-efficiency`` sweep (``sweep_note`` says where a loaded sweep came from)."""
    pre, scr = _run(comparison, "pretrained"), _run(comparison, "scratch")
    lp, ls = loss_facts(pre["history"]), loss_facts(scr["history"])
    cross = loss_crossover(pre["history"], scr["history"])
    ap, as_ = accuracy_facts(pre), accuracy_facts(scr)
    gm, gmm = ap["matched"] - as_["matched"], ap["mismatched"] - as_["mismatched"]
    total = lp["steps"]
    warm = ceil(float(pre["config"]["warmup_ratio"]) * total)
    sweep_text, sf = _sweep_paragraph(sweep, comparison, cfg, sweep_note)
    caveats = model_caveats(comparison.model, comparison.data, comparison.profile)
    if abs(ls["final_smoothed"] - CHANCE_LOSS) < CHANCE_MARGIN:
        scratch_end = (
            "A loss that stays at ln 3 means the model gives every label about one third on every "
            "pair: with balanced classes that is the best it can do without reading the "
            "sentences, and a randomly initialised Transformer sits there until the labels alone "
            "have taught it enough about words and word order.")
        if as_["matched"] - 1 / 3 > CHANCE_MARGIN:
            scratch_end += (
                f" (Its matched accuracy, {_acc(as_['matched'])}, is still above chance: its "
                "probabilities lean towards the right label often enough for the top guess to be "
                "right, but stay so close to one third that the loss hardly moves.)")
    elif ls["final_smoothed"] < lp["final_smoothed"] - CHANCE_MARGIN:
        scratch_end = (
            "Its training loss ends *below* the pre-trained model's: a random network can "
            "memorise its training pairs, so a low training loss alone proves nothing. Validation "
            "accuracy, below, shows whether anything that transfers was learnt.")
    else:
        scratch_end = ("It does learn, but later and more slowly: without pre-training, every "
                       "feature has to come from these labelled pairs.")
    before = ""
    if ap["before"] is not None and as_["before"] is not None:
        near = max(abs(ap["before"] - 1 / 3), abs(as_["before"] - 1 / 3)) < 0.1
        before = (f"Before training (epoch 0) the two score {_acc(ap['before'])} and "
                  f"{_acc(as_['before'])} on matched"
                  + (", about the third that guessing gets. " if near else
                     ": a random head's guesses, which on few scored pairs can stray far from "
                     "the third that guessing gets on average. "))
    beats = sf["beats_scratch_best_n"] if sf else None
    korean_scratch = ("ln 3 근처에 머물렀다" if ls["leaves_chance_step"] is None
                      else f"{ls['leaves_chance_step']:,}번째 step에 내려갔다")
    korean_pre = ("ln 3 근처에 머물렀고" if lp["leaves_chance_step"] is None
                  else f"{lp['leaves_chance_step']:,}번째 step에 ln 3 아래로 내려갔고")
    korean = (
        f"**한 줄 요약:** `{comparison.profile}` 프로필에서 사전학습 모델의 loss는 {korean_pre} "
        f"(첫 epoch 평균 {lp['first_epoch_mean']:.3f}), 처음부터 학습한 모델은 {korean_scratch} "
        f"(첫 epoch 평균 {ls['first_epoch_mean']:.3f}); matched / mismatched 정확도는 "
        f"{_acc(ap['matched'])} / {_acc(ap['mismatched'])} 대 {_acc(as_['matched'])} / "
        f"{_acc(as_['mismatched'])}로 {_points(gm)}%p 차이"
        + (f"이며, 사전학습 모델은 {beats:,}쌍만으로 처음부터 학습한 모델의 최고 정확도를 넘었다"
           if beats is not None else "이다")
        + (" (tiny 프로필은 두 모델 모두 무작위 가중치라 숫자에 의미가 없다)."
           if comparison.model == "tiny" else ".")
    )
    return f"""{question_block('Q3')}

{_setup_line(pre, comparison)}

{caveats}

**The fine-tuned pre-trained model's loss curve.** It starts at {lp['first_loss']:.3f}
({lp['first_loss'] - CHANCE_LOSS:+.3f} from ln 3 ≈ {CHANCE_LOSS:.3f}, the loss of a uniform guess):
the classification head is new and random, so at the first step it spreads its probability
about evenly whatever the encoder says. The first {warm:,} steps warm the learning rate up from
zero, so the earliest updates are small.
{_leaves(lp, total)} {_shape(lp)} Its mean loss is {lp['first_epoch_mean']:.3f} over the first
epoch and {lp['last_epoch_mean']:.3f} over the last; the smoothed curve ends at
{lp['final_smoothed']:.3f}.

**Trained from scratch.** The same architecture and configuration with every weight random,
trained on the same pairs in the same order with the same optimiser, schedule and learning rate.
It starts at {ls['first_loss']:.3f} ({ls['first_loss'] - CHANCE_LOSS:+.3f} from ln 3).
{_leaves(ls, ls['steps'])} Its first-epoch mean loss is {ls['first_epoch_mean']:.3f}
(pre-trained: {lp['first_epoch_mean']:.3f}) and its smoothed curve ends at
{ls['final_smoothed']:.3f} (pre-trained: {lp['final_smoothed']:.3f}).
{scratch_end} {_crossover(cross)}

**Validation accuracy.** {before}After training, the pre-trained model scores
{_acc(ap['matched'])} on matched and {_acc(ap['mismatched'])} on mismatched, the scratch model
{_acc(as_['matched'])} and {_acc(as_['mismatched'])}: a gap of {_points(gm)} / {_points(gmm)}
points. In MNLI, mismatched pairs come from genres the training set does not contain, so that
split measures transfer beyond the training genres. Matched accuracy per epoch: pre-trained
{_trace(ap['per_epoch'])}; scratch {_trace(as_['per_epoch'])}.

{sweep_text}

{_published(int(pre['train_size']), gm, lp['steps'], ap['matched'])}

{korean}
"""


def frozen_explanation(comparison: Comparison) -> str:
    """Markdown for notebook 03: why a frozen encoder learns less than full fine-tuning, what
    it saves, and when it is still the right choice, with the ``finetune-vs-frozen`` run's
    numbers."""
    full, frozen = _run(comparison, "full"), _run(comparison, "frozen")
    total = int(full["params"]["all"]["total"])
    trained_full = int(full["params"]["all"]["trainable"])
    trained_frozen = int(frozen["params"]["all"]["trainable"])
    af, az = accuracy_facts(full), accuracy_facts(frozen)
    lf, lz = loss_facts(full["history"]), loss_facts(frozen["history"])

    def epoch_time(run: dict) -> float:
        times = [e["epoch_time_s"] for e in run["epochs"] if _is_finite(e.get("epoch_time_s"))]
        return float(fmean(times)) if times else float("nan")

    def _lr_sentence(full: dict, frozen: dict) -> str:
        lr_full, lr_frozen = full["config"]["lr"], frozen["config"]["lr"]
        if lr_full == lr_frozen:
            return (f"Both runs used the same peak learning rate, {lr_full:g}, chosen for "
                    "fine-tuning; a head trained alone usually takes a larger one, so a frozen "
                    "run with its own learning rate would narrow the gap somewhat, but it could "
                    "never adapt the encoder.")
        return (f"Full fine-tuning used a peak learning rate of {lr_full:g}; the frozen run's "
                f"head got its own, {lr_frozen:g} ({lr_frozen / lr_full:.0f}×), because a fresh "
                "head trained alone needs far larger steps than a pre-trained encoder can take "
                "(at the fine-tuning rate it barely moves from the uniform guess). Even so it "
                "can never adapt the encoder.")

    tf, tz = epoch_time(full), epoch_time(frozen)
    time_share = tz / tf if tf > 0 else float("nan")
    speed = ("Epoch times were not recorded." if not isfinite(time_share) else
             f"A frozen epoch took {time_share:.0%} of a fully fine-tuned one's time: the "
             "backward pass stops at the head, and the optimiser updates "
             f"{trained_frozen:,} weights instead of {trained_full:,}."
             if time_share < 0.9 else
             f"A frozen epoch took {time_share:.0%} of a fully fine-tuned one's time, no real "
             "saving here: on a model this small, work outside the encoder (data loading, "
             "per-step overhead) dominates. With DistilBERT the backward pass through the "
             "encoder, which freezing skips, is most of a step.")
    gap = af["matched"] - az["matched"]
    ratio = trained_full / max(trained_frozen, 1)
    caveats = model_caveats(comparison.model, comparison.data, comparison.profile)
    return f"""**Why the frozen encoder learns less.** Frozen, only the head trains:
{trained_frozen:,} of {total:,} parameters ({100 * trained_frozen / total:.2g}%); full fine-tuning
trains {trained_full:,}, {ratio:,.0f}× as many. The encoder's features were learnt for its
pre-training objective, not for NLI, and frozen they cannot adapt: the head has to find the
relation between premise and hypothesis in one fixed `[CLS]` vector. But NLI hinges on how
the two sentences' tokens relate (does *never* in the hypothesis clash with *every day* in the
premise?), and that interaction is computed by the attention layers inside the encoder; a
small head reading their output cannot recompute it. In this run: full
fine-tuning {_acc(af['matched'])} matched / {_acc(af['mismatched'])} mismatched, frozen
{_acc(az['matched'])} / {_acc(az['mismatched'])}, a gap of {_points(gap)} points on matched;
the smoothed training loss ends at {lf['final_smoothed']:.3f} fully fine-tuned and
{lz['final_smoothed']:.3f} frozen. {_lr_sentence(full, frozen)}

**What freezing saves, and when it is still right.** {speed} Mean time per epoch: {tf:.1f} s
fully fine-tuned, {tz:.1f} s frozen. Freezing is the
right call when compute or memory is tight (no gradients and no AdamW state for the encoder,
two extra numbers per trained weight), when many tasks share one encoder (one copy of it and a
small head per task; its features can even be computed once and cached), and as a quick
baseline that shows how much the pre-trained features already know. When accuracy matters and
the budget allows, fine-tune every weight: that is what *fine-tuning* means.

{caveats}

*Numbers from this run: profile `{comparison.profile}`, model `{comparison.model}`, data
`{comparison.data}`; {int(full['train_size']):,} training pairs, {af['n_scored']:,} scored per
validation split.*
"""


def summary_answer(q1_facts: dict, q2_facts: dict, comparison: Comparison,
                   sweep: Comparison | None, cfg: LessonConfig, *,
                   sweep_note: str | None = None) -> str:
    """Markdown closing summary of Q1-Q3: each question (Korean, then English), a short answer
    in English and a one-line Korean summary, from ``data_facts``, ``model_facts`` and the
    ``pretrained-vs-scratch`` comparison (plus the sweep when there is one)."""
    used, cut = q1_facts["used"], q1_facts["max_length"]
    params = int(q2_facts["parameters"]["all"]["total"])
    head = int(q2_facts["trainable_when_frozen"])
    pre, scr = _run(comparison, "pretrained"), _run(comparison, "scratch")
    lp, ls = loss_facts(pre["history"]), loss_facts(scr["history"])
    ap, as_ = accuracy_facts(pre), accuracy_facts(scr)
    gm = ap["matched"] - as_["matched"]
    sf = sweep_facts(sweep) if sweep is not None and sweep.runs else None
    keys = ", ".join(f"`{k}`" for k in q2_facts["forward_keys"])
    pre_leaves = (f"falls {CHANCE_MARGIN} below ln 3 by step {lp['leaves_chance_step']:,}"
                  if lp["leaves_chance_step"] is not None else "stays near ln 3 for all")
    scr_step = ls["leaves_chance_step"]
    later = lp["leaves_chance_step"] is None or (scr_step or 0) > lp["leaves_chance_step"]
    scr_leaves = ("its loss never gets there in this run" if scr_step is None
                  else f"it gets there {'only ' if later else ''}at step {scr_step:,}")
    sweep_line = ""
    if sf and sf["sizes"]:
        small, large = sf["sizes"][0], sf["sizes"][-1]
        where = f" ({sweep_note})" if sweep_note else ""
        sweep_line = (f" Across the data-efficiency sweep{where} the gap is "
                      f"{_points(sf['gaps'][small])} points at {small:,} pairs and "
                      f"{_points(sf['gaps'][large])} at {large:,}.")
    caveats = model_caveats(comparison.model, comparison.data, comparison.profile)
    sizes = ", ".join(f"{n:,}" for n in cfg.sweep_sizes)
    k1 = ("**한 줄 요약:** 문장 쌍의 함의·중립·모순을 가리는 MNLI를 골랐고, 이번 실행은 "
          f"학습 {used['train']:,}쌍, 검증 {used['validation_matched']:,} / "
          f"{used['validation_mismatched']:,}쌍, `max_length = {cut['configured']}`를 썼다.")
    k2 = (f"**한 줄 요약:** `{q2_facts['model_class']}`({q2_facts['n_layers']}층, 파라미터 "
          f"{params:,}개)에 3-클래스 분류 헤드를 얹었고, 입력은 `[batch, length]` 모양의 "
          f"{keys}, 출력은 `[batch, 3]` logits이다.")
    k3 = (f"**한 줄 요약:** 첫 epoch 평균 loss는 사전학습 {lp['first_epoch_mean']:.3f}, "
          f"처음부터 학습 {ls['first_epoch_mean']:.3f}였고, matched 정확도는 "
          f"{_acc(ap['matched'])} 대 {_acc(as_['matched'])}로 {_points(gm)}%p 차이다 "
          f"(`{comparison.profile}` 프로필).")
    return f"""{question_block('Q1')}

MNLI: decide whether a premise entails, is neutral towards or contradicts a hypothesis (labels
0, 1, 2 in that order). This run (`{q1_facts['profile']}` profile) trained on
{used['train']:,} pairs from `{q1_facts['source']}` and scored {used['validation_matched']:,} /
{used['validation_mismatched']:,} matched / mismatched pairs. Rounding the {cut['percentile']:g}th
percentile of pair lengths up to a multiple of {cut['multiple']} gives
`max_length = {cut['chosen']}` (truncating {cut['truncated_share']:.2%} of the training pairs);
the run used the profile's `max_length = {cut['configured']}`, which truncates
{cut['configured_truncated_share']:.2%}.

{k1}

{question_block('Q2')}

`{q2_facts['model_class']}` from `{q2_facts['checkpoint']}`: {q2_facts['n_layers']} Transformer
layers, hidden size {q2_facts['hidden_size']}, {q2_facts['n_heads']} attention heads,
{params:,} parameters, of which the classification head holds {head:,}. In: a padded batch of
`[CLS] premise [SEP] hypothesis [SEP]` sequences as {keys}, each of shape `[batch, length]`
(e.g. `{q2_facts['batch_shape']}`). Out: logits of shape `{q2_facts['logits_shape']}`, one score
per label; softmax gives probabilities, `id2label` the label name, and cross-entropy against the
gold label the loss.

{k2}

{question_block('Q3')}

Fine-tuned from pre-trained weights, the loss starts at {lp['first_loss']:.3f}, about ln 3 (the
head is random), and {pre_leaves} of {lp['steps']:,} steps; trained from scratch with the
same recipe, {scr_leaves} (first-epoch mean loss {lp['first_epoch_mean']:.3f} vs
{ls['first_epoch_mean']:.3f}). Matched / mismatched accuracy: {_acc(ap['matched'])} /
{_acc(ap['mismatched'])} pre-trained vs {_acc(as_['matched'])} / {_acc(as_['mismatched'])}
from scratch, {_points(gm)} points on matched.{sweep_line} Published full-data results
(DistilBERT {PUBLISHED['distilbert_matched_dev'][0]}%, a Transformer without pre-training
{PUBLISHED['transformer_no_pretraining'][0]}%) show that with {FULL_TRAIN_PAIRS:,} labelled
pairs the gap shrinks but does not vanish.

{k3}

{caveats}

*Numbers from this run: profile `{comparison.profile}`, model `{comparison.model}`, data
`{comparison.data}`; sweep sizes configured: {sizes}.*
"""
