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


# ----- Q3 and the closing summary (notebook 04) ---------------------------------------------
