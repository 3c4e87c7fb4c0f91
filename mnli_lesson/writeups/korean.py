"""Korean particles (조사) that agree with the word before them: ``josa("96", "을/를")`` is
"96을", ``josa("35.8%", "로")`` is "35.8%로" (퍼센트), ``josa("MiniLM", "이/가")`` is "MiniLM이".

A particle's form depends on how the preceding word *sounds*: after a final consonant (받침)
을 / 이 / 은 / 과 / 으로 / 이라 / 이나 / 이에요, after a vowel 를 / 가 / 는 / 와 / 로 / 라 / 나 /
예요, and 로 also after ㄹ. Rendered text puts numbers, units and English names before
particles, so ``final_consonant`` reads them as a Korean reader says them aloud.

No dependency: ``tossi`` (PyPI 0.3.1, last released 2018, needs ``six`` and ``bidict``) reads
Hangul and plain numbers but neither "2,000", "%", nor English, and ``josa`` (0.0.8, 2012) only
Hangul; this module is small and ``tests/test_korean.py`` pins every rule below.
"""

from __future__ import annotations

import re

#: Each particle as (form after a final consonant, form after a vowel).
PAIRS: tuple[tuple[str, str], ...] = (
    ("을", "를"), ("이", "가"), ("은", "는"), ("과", "와"), ("으로", "로"), ("이라", "라"),
    ("이에요", "예요"), ("이나", "나"), ("이다", "다"), ("이고", "고"), ("이며", "며"),
    ("이랑", "랑"))
_FORMS = sorted(((form, pair) for pair in PAIRS for form in pair), key=lambda f: -len(f[0]))
#: Final consonants (jongseong) in code-point order; index 0: none.
_FINALS = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ",
           "ㄿ", "ㅀ", "ㅁ", "ㅂ", "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")

# How the end of a word is read. Checked: tests/test_korean.py gives each of ~40 numbers and
# ~70 English words or identifiers its Hangul reading (십, 천이백, 스텝, 버트, 미니엘엠, ...)
# and asserts the same particle, for all eight pairs, as the reading gets:
# - Hangul: its final consonant. Trailing ) ] " ' ` * _ . , and a complete "(...)" are skipped
#   (the particle agrees with the word before a parenthesis, as in 국제연합(UN)은).
# - Units: % 퍼센트, %p 퍼센트포인트, × 배, ° 도, s 초 (after a number): no final.
# - Numbers, Sino-Korean: the last non-zero digit (영 일 이 삼 사 오 육 칠 팔 구), unless zeros
#   follow it: 10 십, 100 백, 1,000 천, then 만 억 조 경 every four digits. "0" is 영;
#   decimals are read digit by digit, so "52.20" ends in 영. Group commas/spaces are ignored.
# - Latin letters: the last word of an identifier (`max_length` -> length, MiniLM -> LM) as
#   a Korean loanword: -ng ㅇ, -m ㅁ, -n ㄴ, -l/-le ㄹ, -ne ㄴ, -me ㅁ, -ype ㅂ; vowel + p ㅂ
#   (스텝, 스윕; but -oop 루프); short vowel + b ㅂ (웹), + t ㅅ (셋, 인풋; but 테스트, 버트),
#   + k/c ㄱ (스택, 로직; but 마스크); everything else (loss, logits, encoder, batch, grad)
#   none. Capitals (but a SCREAMING_SNAKE name's words) and vowel-less words are spelt out:
#   only L 엘, R 알 (ㄹ), M 엠 (ㅁ), N 엔 (ㄴ) end in one.
# Words the rules misread; "epoch" as 에폭, as Korean ML courses say it (standard: 에포크).
_KNOWN = {"bert": "", "glue": "", "cuda": "", "hub": "", "check": "", "bit": "", "hit": "",
          "group": "ㅂ", "json": "ㄴ", "ram": "ㅁ", "epyc": "ㄱ", "epoch": "ㄱ"}
_LETTERS = {"l": "ㄹ", "r": "ㄹ", "m": "ㅁ", "n": "ㄴ"}
_UNITS = {"%p": "", "%": "", "×": "", "°": "", "s": "", "ms": ""}
_DIGITS = ("ㅇ", "ㄹ", "", "ㅁ", "", "", "ㄱ", "ㄹ", "ㄹ", "")  # 영 일 이 삼 사 오 육 칠 팔 구
_PLACES = ("", "ㅂ", "ㄱ", "ㄴ")  # the last word of a four-digit group: -, 십, 백, 천
_MYRIADS = ("", "ㄴ", "ㄱ", "", "ㅇ")  # -, 만, 억, 조, 경 (beyond 경: 경)
_SKIP = " \t\n\u00a0\u2009\u202f]}\"'`*_.,;:!?’”»」』"
_NUMBER = re.compile(r"(\d(?:[\d,\u2009\u202f\u00a0]*\d)?)(?:\.(\d+))?$")
_UNIT = re.compile(r"\d\s*(%p|%|×|°|ms|s)$")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_VOWELS = set("aeiouy")


def _strip(word: str) -> str:
    """The word without what is not said: closing punctuation and a trailing "(...)"."""
    while True:
        word = word.rstrip(_SKIP)
        if not word.endswith(")"):
            return word
        depth, start = 0, -1
        for i in range(len(word) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(word[i], 0)
            if depth == 0:
                start = i
                break
        if start > 0:
            word = word[:start]  # "국제연합(UN)" -> "국제연합"
        elif start == 0:
            word = word[1:-1]  # "(0.5)" -> "0.5"
        else:
            word = word[:-1]  # an unmatched ")"


def _number_final(integer: str, fraction: str | None) -> str:
    if fraction:
        return _DIGITS[int(fraction[-1])]
    n = int(re.sub(r"\D", "", integer))
    if n == 0:
        return _DIGITS[0]
    zeros = len(str(n)) - len(str(n).rstrip("0"))
    if zeros == 0:
        return _DIGITS[n % 10]
    if zeros < 4:
        return _PLACES[zeros]
    return _MYRIADS[min(zeros // 4, len(_MYRIADS) - 1)]


def _english_final(word: str, in_name: bool = False) -> str:
    """The final consonant of an English word or letters as Korean loanwords end; capitals
    are spelt out unless ``in_name`` (a word of a SCREAMING_SNAKE name: `RUN_SWEEP`)."""
    low = word.lower()
    if low in _KNOWN:
        return _KNOWN[low]
    if (word.isupper() and not in_name) or len(low) == 1 or not _VOWELS & set(low):
        return _LETTERS.get(low[-1], "")
    last, before = low[-1], low[-2]
    if low.endswith("ng"):
        return "ㅇ"
    if low.endswith(("mb", "mn")) or last in "mnl":
        return "ㅁ" if low.endswith(("m", "mb", "mn")) else {"n": "ㄴ", "l": "ㄹ"}[last]
    if last == "e":
        return {"l": "ㄹ", "n": "ㄴ", "m": "ㅁ"}.get(before, "ㅂ" if low.endswith("ype") else "")
    short = before in _VOWELS and (len(low) < 3 or low[-3] not in _VOWELS)
    if last == "p":
        return "ㅂ" if before in _VOWELS and not low.endswith(("oop", "oup")) else ""
    if last == "b":
        return "ㅂ" if short else ""
    if last == "t":
        return "ㅅ" if short or low.endswith("out") else ""
    if last in "kc":
        return "ㄱ" if short or low.endswith(("ck", "ook")) else ""
    return ""


def final_consonant(word: str) -> str | None:
    """The final consonant (as a compatibility jamo, "" for none) of ``word`` as said aloud,
    or None when its end is not something this module can read (an emoji, nothing)."""
    word = _strip(word)
    if not word:
        return None
    unit = _UNIT.search(word)
    if unit:
        return _UNITS[unit.group(1)]
    if word.endswith(("%p", "%", "×", "°")):
        return ""
    last = word[-1]
    if "가" <= last <= "힣":
        return _FINALS[(ord(last) - ord("가")) % 28]
    if "ㄱ" <= last <= "ㅎ":
        return last
    number = _NUMBER.search(word)
    if number:
        return _number_final(number.group(1), number.group(2))
    words = _WORD.findall(word)
    if words and word.endswith(words[-1]):
        return _english_final(words[-1], word[: -len(words[-1])].endswith("_"))
    return None


def _forms(particle: str) -> tuple[str, str, str]:
    """(form after a consonant, form after a vowel, what follows) of ``particle``."""
    head = particle.split("/")[0]
    for form, pair in _FORMS:
        tail = "" if "/" in particle else head[len(form):]
        if head.startswith(form) and not (tail and form in ("을", "를", "이", "가", "은", "는")):
            return (*pair, tail)
    raise ValueError(f"not a particle with two forms: {particle!r}")


def josa(word: str, particle: str) -> str:
    """``word`` followed by the form of ``particle`` that agrees with it. ``particle`` is
    either form ("을" or "를"), a pair ("을/를"), or a form with more after it ("로는",
    "이라고"). Unreadable words get both forms, as Korean writes them: "을(를)", "(으)로"."""
    after_consonant, after_vowel, tail = _forms(particle)
    final = final_consonant(word)
    if final is None:
        if after_consonant.endswith(after_vowel):
            prefix = after_consonant[: -len(after_vowel)]
            return f"{word}({prefix}){after_vowel}{tail}"
        return f"{word}{after_consonant}({after_vowel}){tail}"
    if after_consonant == "으로" and final == "ㄹ":
        return word + after_vowel + tail
    return word + (after_consonant if final else after_vowel) + tail


#: A form of a two-form particle right after a digit, %, closing backtick or bracket, and not
#: the start of a longer Korean word (이다 is left out: after a vowel 이다 and 다 are both right).
_AFTER_VALUE = re.compile(r"([^\s(]*(?:[\d%`)\]]|%p))"
                          r"(이에요|예요|으로|이라|이나|을|를|이|가|은|는|과|와|로|라|나)(?![가-힣])")


def particle_errors(text: str) -> list[str]:
    """Every "value + particle" in ``text`` whose particle disagrees with ``josa``, as
    "96를 (josa: 96을)"; empty when all agree. The value is read with everything before it in
    its paragraph, so that "토큰(DistilBERT는 WordPiece)을" agrees with 토큰."""
    errors = []
    for match in _AFTER_VALUE.finditer(text):
        value, particle = match.groups()
        before = text[text.rfind("\n\n", 0, match.start()) + 1: match.end(1)].lstrip()
        right = josa(before, particle)[len(before):]
        if right != particle:
            errors.append(f"{value}{particle} (josa: {value}{right})")
    return errors
