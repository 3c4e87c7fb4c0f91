"""Korean particles that agree with the word before them: numbers as they are read aloud,
English names as loanwords, Hangul by its final consonant; and the rendered Korean summaries,
where a particle after a value must agree (no "96를", no "80로")."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from test_writeups_q3 import OUTCOMES, SAVES, pretrained_vs_scratch, sweep  # tests/ on sys.path
from test_writeups_q12 import cfg_for, fake_model_facts, toy_data

from mnli_lesson import checkpoints, writeups
from mnli_lesson.writeups.korean import final_consonant, josa, particle_errors
from mnli_lesson.writeups.render import TEMPLATES, environment

PAIRS = ["을/를", "이/가", "은/는", "과/와", "으로/로", "이라/라", "이에요/예요", "이나/나"]

#: Each number and how it is read aloud (Sino-Korean): the particle must agree with the reading.
NUMBERS = {
    "0": "영", "10": "십", "11": "십일", "12": "십이", "13": "십삼", "14": "십사", "15": "십오",
    "16": "십육", "17": "십칠", "18": "십팔", "19": "십구", "20": "이십", "96": "구십육",
    "80": "팔십", "100": "백", "105": "백오", "110": "백십", "1,000": "천", "1,200": "천이백",
    "2,000": "이천", "2,004": "이천사", "10,000": "만", "20,000": "이만", "30,001": "삼만일",
    "392,702": "삼십구만이천칠백이", "100,000,000": "억", "1,000,000,000,000": "조",
    "2\u2009000": "이천", "0.5": "영점오", "52.20": "오십이점이영", "1.096": "일점영구육",
    "35.8 %": "삼십오점팔 퍼센트", "35.8%": "삼십오점팔퍼센트", "3.5 %p": "삼점오 퍼센트포인트",
    "+36.0%p": "플러스 삼십육점영 퍼센트포인트", "113×": "백십삼배", "1e-4": "일 이 마이너스 사",
    "**96**": "구십육", "`max_length = 48`": "맥스 렝스 이퀄 사십팔", "[4, 3]": "사 삼",
    "ln 3": "엘엔 삼", "10.0 s": "십점영 초",
}

#: English words and identifiers, and how a Korean reader says them.
ENGLISH = {
    "loss": "로스", "step": "스텝", "DistilBERT": "디스틸버트", "MiniLM": "미니엘엠",
    "token": "토큰", "tokens": "토큰스", "CLS": "씨엘에스", "[CLS]": "씨엘에스",
    "`max_length`": "맥스 렝스", "logits": "로짓츠", "`input_ids`": "인풋 아이디즈",
    "`attention_mask`": "어텐션 마스크", "`AutoTokenizer`": "오토토크나이저",
    "DataCollatorWithPadding": "데이터콜레이터위드패딩", "model": "모델", "label": "레이블",
    "pool": "풀", "sample": "샘플", "pipeline": "파이프라인", "time": "타임", "type": "타입",
    "dataset": "데이터셋", "input": "인풋", "dropout": "드롭아웃", "test": "테스트",
    "loop": "루프", "stack": "스택", "mask": "마스크", "notebook": "노트북", "logic": "로직",
    "sync": "싱크", "LayerNorm": "레이어놈", "AdamW": "아담더블유", "GPU": "지피유",
    "MNLI": "엠엔엘아이", "fp16": "에프피십육", "all-MiniLM-L6-v2": "올미니엘엠엘육브이이",
    "head": "헤드", "encoder": "인코더", "batch": "배치", "epoch": "에폭", "torch": "토치",
    "grad": "그래드", "train": "트레인", "web": "웹", "padding": "패딩", "group": "그룹",
    "`requires_grad = False`": "폴스", "lr": "엘알", "cfg": "씨에프지", "x": "엑스", "L": "엘",
    "R": "알", "M": "엠", "N": "엔", "T": "티", "`freeze_encoder(model)`": "프리즈 인코더",
    "`core.train`": "코어 트레인", "Hub": "허브", "BERT": "버트", "JSON": "제이슨",
    "column": "칼럼", "n/a": "엔에이", "sweep": "스윕", "deep": "딥", "soup": "수프",
    "`RUN_SWEEP`": "런 스윕", "`FULL_MARGIN`": "풀 마진", "MNLI_LESSON_PROFILE": "프로필",
    "`unscale_`": "언스케일", "`mean_pool(hidden, attention_mask)`": "민 풀",
}


def particle_of(text: str, word: str) -> str:
    return text.removeprefix(word)


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize(("number", "reading"), list(NUMBERS.items()))
def test_numbers_take_the_particle_of_their_reading(number, reading, pair):
    assert particle_of(josa(number, pair), number) == particle_of(josa(reading, pair), reading)


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize(("word", "reading"), list(ENGLISH.items()))
def test_english_takes_the_particle_of_its_korean_reading(word, reading, pair):
    assert particle_of(josa(word, pair), word) == particle_of(josa(reading, pair), reading)


def test_every_last_digit():
    """The final consonant of 1..9 and of the place words, spelled out."""
    assert [final_consonant(str(d)) for d in range(10)] == [
        "ㅇ", "ㄹ", "", "ㅁ", "", "", "ㄱ", "ㄹ", "ㄹ", ""]  # 영 일 이 삼 사 오 육 칠 팔 구
    assert [final_consonant(f"{10 ** k:,}") for k in (1, 2, 3, 4, 8, 12, 16)] == [
        "ㅂ", "ㄱ", "ㄴ", "ㄴ", "ㄱ", "", "ㅇ"]  # 십 백 천 만 억 조 경
    assert [josa("96", "을/를"), josa("80", "로"), josa("35.8 %", "로")] == [
        "96을", "80으로", "35.8 %로"]


@pytest.mark.parametrize(("word", "particle", "expected"), [
    ("사과", "을/를", "사과를"), ("책", "을/를", "책을"), ("값", "은/는", "값은"),
    ("모델", "이/가", "모델이"), ("레이어", "이/가", "레이어가"), ("전제", "과/와", "전제와"),
    ("가설", "과/와", "가설과"), ("서울", "으로/로", "서울로"), ("집", "으로/로", "집으로"),
    ("학교", "으로/로", "학교로"), ("함의", "이라/라", "함의라"), ("중립", "이라/라", "중립이라"),
    ("모순", "이에요/예요", "모순이에요"), ("토크나이저", "이에요/예요", "토크나이저예요"),
    ("검증", "이나/나", "검증이나"), ("학습", "이나/나", "학습이나"), ("ㄹ", "으로", "ㄹ로"),
    ("국제연합(UN)", "은", "국제연합(UN)은"), ("“정확도”", "를", "“정확도”를"),
])
def test_hangul(word, particle, expected):
    assert josa(word, particle) == expected


def test_particle_given_as_either_form_a_pair_or_with_more_after_it():
    for particle in ("을", "를", "을/를", "를/을"):
        assert josa("96", particle) == "96을"
    assert josa("80", "로는") == "80으로는" and josa("서울", "으로서") == "서울로서"
    assert josa("loss", "이라고") == "loss라고" and josa("step", "과의") == "step과의"
    for particle in ("의", "에서", "는데", "도"):
        with pytest.raises(ValueError, match="two forms"):
            josa("96", particle)


def test_an_unreadable_word_gets_both_forms():
    assert final_consonant("🙂") is None and final_consonant("") is None
    assert [josa("🙂", p) for p in ("을", "이", "으로", "이라", "과")] == [
        "🙂을(를)", "🙂이(가)", "🙂(으)로", "🙂(이)라", "🙂과(와)"]


def test_particle_errors_finds_what_disagrees():
    assert particle_errors("`max_length` 96를 쓰고 80로 줄였다") == [
        "96를 (josa: 96을)", "80로 (josa: 80으로)"]
    # Each is named by its last whitespace-free piece, the part that decides.
    assert particle_errors("`step`를, 3.5%p은, `[4, 3]`를") == [
        "`step`를 (josa: `step`을)", "3.5%p은 (josa: 3.5%p는)", "3]`를 (josa: 3]`을)"]
    assert particle_errors("96을, 80으로, 35.8%로, 차이 +0.5%p는, 10%p이다, 2층의 `loss`가") == []
    # After a parenthesis the particle agrees with the word before it, in the same paragraph.
    assert particle_errors("토큰(DistilBERT는\nWordPiece)을, 인코더(`model.base_model`)가") == []
    assert particle_errors("토큰(DistilBERT는 WordPiece)를") == [
        "WordPiece)를 (josa: WordPiece)을)"]


# --------------------------------------------------------------------------- the templates

PARTICLE = "(이에요|예요|으로|이라|이나|을|를|이|가|은|는|과|와|로|라|나)(?![가-힣])"


def test_no_template_writes_a_particle_straight_after_a_value():
    """A value's particle goes through |josa: `{{ n }}를` is right for some n only."""
    pattern = re.compile(r"\}\}(?:%p|%|`|\)|\*\*)?" + PARTICLE)
    for path in TEMPLATES.glob("*.md.j2"):
        source = path.read_text(encoding="utf-8")
        assert not pattern.findall(source), path.name


def test_josa_is_a_template_filter():
    template = environment().from_string('{{ n|josa("을/를") }} {{ s|pct|josa("로") }}')
    assert template.render(n=96, s=0.358) == "96을 35.8%로"


@pytest.fixture
def no_checkpoint_info(monkeypatch):
    """As in the write-up tests: nothing is known about any checkpoint (no weights hashed)."""
    monkeypatch.setattr(checkpoints, "checkpoint_info", {}.get, raising=False)


def rendered_answers() -> list[str]:
    """Q1, Q2, Q3 and the summary, over every outcome, with and without a sweep, and with
    numbers ending in every digit."""
    cfg = cfg_for()
    q1 = writeups.data_facts(toy_data(10, negate=2), np.arange(10, 50), cfg_for(max_length=32))
    texts = []
    for last in range(10):
        d = replace(q1, used=q1.used | {"train": 1990 + last})
        m = replace(fake_model_facts(2, 64, 1.0958), n_layers=10 + last)
        texts += [writeups.q1_answer(d), writeups.q2_answer(m)]
        for outcome in OUTCOMES:
            c = pretrained_vs_scratch(cfg, outcome)
            for s in (None, sweep(cfg, SAVES)):
                texts += [writeups.q3_answer(c, s, cfg),
                          writeups.summary_answer(d, m, c, s, cfg)]
    tiny = pretrained_vs_scratch(cfg, "level", model="tiny", profile="tiny", data="sample")
    return [*texts, writeups.q3_answer(tiny, None, cfg)]


def test_rendered_korean_particles_agree_with_josa(no_checkpoint_info):
    texts = rendered_answers()
    korean = [line for text in texts for line in text.splitlines() if "한 줄 요약" in line]
    assert len(korean) >= 100 and any("%로" in line for line in korean)
    assert any("%p는" in line for line in korean)  # the "level" outcome's gap
    for text in texts:
        assert particle_errors(text) == [], text
