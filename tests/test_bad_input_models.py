"""Bad input, round three (issue 22): tokenizers that do not belong to their weights, configs
that do not describe them, a full disk while saving weights, and output folders that cannot be
created. Each ends in one ``LessonError`` line that says what is wrong and what to fix.

Folders are built in ``tmp_path``: from the tiny checkpoint (an unknown checkpoint to the lesson)
or as links to the shared MiniLM files (a known one), with the damaged file written in place.
"""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import pandas as pd
import pytest
from safetensors import SafetensorError
from transformers import AutoTokenizer, BertConfig

from mnli_lesson import experiments, store
from mnli_lesson.cli import main
from mnli_lesson.errors import LessonError
from mnli_lesson.models import (
    MAX_UNK_SHARE,
    build_model,
    check_tokenizer_fits,
    check_unknown_share,
    load_tokenizer,
)

DISK_FULL = ('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
             '"No space left on device" })')


@pytest.fixture(autouse=True)
def _no_lesson_settings(clean_env):
    return clean_env




@pytest.fixture
def minilm(shared_paths, tmp_path) -> Path:
    """The shared MiniLM checkpoint (known by its weights' digest) as links, so that a test can
    replace one file with a damaged one without touching the shared copy."""
    target = tmp_path / "minilm"
    target.mkdir()
    for f in shared_paths["model"].iterdir():
        (target / f.name).symlink_to(f)
    return target


def replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text, encoding="utf-8")


def one_line(call, *args, **kwargs) -> str:
    with pytest.raises(LessonError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def run_cli(model: Path, tmp_path: Path, capsys, *extra: str) -> str:
    argv = ["compare", "finetune-vs-frozen", "--profile", "tiny", "--model", str(model),
            "--epochs", "1", "--train-size", "48", "--eval-size", "12",
            "--out", str(tmp_path / "out"), "--no-progress", *extra]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def tiny_tokenizer_json(folder: Path, edit) -> None:
    """Rewrite the WordPiece vocabulary (token -> id) of ``folder``'s tokenizer.json."""
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    data["model"]["vocab"] = edit(data["model"]["vocab"])
    ids = data["model"]["vocab"]
    for added in data["added_tokens"]:
        added["id"] = ids[added["content"]]
    for special in (data.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [ids[token] for token in special["tokens"]]
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    if (folder / "vocab.txt").is_file():  # transformers 4.57 saves one too; 5.x does not
        by_id = sorted(ids, key=ids.__getitem__)
        (folder / "vocab.txt").write_text("".join(f"{t}\n" for t in by_id), encoding="utf-8")


def shuffled(vocab: dict[str, int]) -> dict[str, int]:
    tokens = list(vocab)
    random.Random(0).shuffle(tokens)
    return {t: i for i, t in enumerate(tokens)}


# --------------------------------------------------------------------------- 1a: token order


@pytest.mark.parametrize("keep_tokenizer_json", [False, True])
def test_known_checkpoint_with_a_shuffled_vocab_txt(minilm, keep_tokenizer_json):
    lines = (minilm / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    random.Random(1).shuffle(lines)
    replace(minilm / "vocab.txt", "\n".join(lines) + "\n")
    if not keep_tokenizer_json:  # then the shuffled vocab.txt is what loads
        (minilm / "tokenizer.json").unlink()
    message = one_line(load_tokenizer, str(minilm))
    assert "is not the vocabulary saved with sentence-transformers/all-MiniLM-L6-v2" in message
    assert "30522 tokens" in message and "copy the tokenizer files" in message


def test_unknown_checkpoint_with_a_shuffled_vocabulary(folder, tmp_path, capsys):
    """No digest to compare with: the special tokens' ids give it away (config.json names
    the padding id the weights were trained with)."""
    tiny_tokenizer_json(folder, shuffled)
    line = run_cli(folder, tmp_path, capsys)
    assert "the tokenizer's pad token '[PAD]' has id" in line
    assert "config.json's pad_token_id is 0" in line and "tokenizer saved with" in line


def test_vocab_txt_that_disagrees_with_tokenizer_json(folder):
    vocab = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    tokens[10], tokens[11] = tokens[11], tokens[10]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    message = one_line(load_tokenizer, str(folder))
    assert "vocab.txt and the tokenizer that loads" in message and "token id 10" in message


def test_special_token_outside_the_embeddings():
    class Stub:  # a tokenizer whose [SEP] id lies beyond the model's rows
        pad_token_id, sep_token_id, sep_token, unk_token_id = 0, 5000, "[SEP]", None

        def __len__(self) -> int:
            return 1500

    model = build_model("tiny")
    message = one_line(check_tokenizer_fits, Stub(), model)
    assert "sep token '[SEP]' has id 5000" in message and "1500 embeddings" in message


# --------------------------------------------------------------------------- 1b: fewer tokens


def test_known_checkpoint_with_a_smaller_vocabulary(minilm):
    lines = (minilm / "vocab.txt").read_text(encoding="utf-8").split("\n")[:20000]
    replace(minilm / "vocab.txt", "\n".join(lines) + "\n")
    (minilm / "tokenizer.json").unlink()
    message = one_line(load_tokenizer, str(minilm))
    assert "(20000 tokens)" in message and "all-MiniLM-L6-v2" in message


def test_unknown_checkpoint_with_a_smaller_vocabulary(folder, tmp_path, capsys):
    tiny_tokenizer_json(folder, lambda v: {t: i for t, i in v.items() if i < 1000})
    line = run_cli(folder, tmp_path, capsys)
    # Whichever check reads it first: the [UNK] share on the training pairs (the dropped ids
    # are a third of the pieces) or the size against config.json's vocab_size.
    assert ("the tokenizer has 1000 tokens but the weights were trained with 1500" in line
            and "vocab_size" in line) or "into [UNK] (more than 2%)" in line
    assert "tokenizer saved with this checkpoint" in line


def test_padded_embeddings_are_not_another_vocabulary(tiny):
    """A few spare rows (matrices padded for fast kernels) are allowed."""
    model = build_model(str(tiny))
    model.config.vocab_size = 1500 + 64
    check_tokenizer_fits(AutoTokenizer.from_pretrained(str(tiny)), model)


# --------------------------------------------------------------------------- 1c: casing


def test_lower_casing_switched_off_on_an_uncased_vocabulary(minilm, tmp_path, capsys):
    settings = json.loads((minilm / "tokenizer_config.json").read_text(encoding="utf-8"))
    replace(minilm / "tokenizer_config.json", json.dumps({**settings, "do_lower_case": False}))
    line = run_cli(minilm, tmp_path, capsys)
    assert "into [UNK] (more than 2%)" in line and "do_lower_case true" in line


def test_lower_casing_switched_off_on_an_unknown_checkpoint(folder):
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings,
                                                             "do_lower_case": False}))
    message = one_line(check_tokenizer_fits, AutoTokenizer.from_pretrained(str(folder)),
                       build_model(str(folder)))
    assert "[UNK]" in message and "uncased" in message


def test_unk_threshold_lies_between_the_measured_shares(minilm, shared_paths):
    """The numbers behind MAX_UNK_SHARE: the right tokenizer on real training pairs stays far
    below it, the same tokenizer without lower-casing far above."""
    frame = pd.read_csv(shared_paths["data"] / "train.csv", keep_default_na=False).head(500)
    texts = frame["premise"].tolist() + frame["hypothesis"].tolist()
    right = AutoTokenizer.from_pretrained(str(minilm))
    wrong = AutoTokenizer.from_pretrained(str(minilm), do_lower_case=False)

    def share(tokenizer) -> float:
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return sum(i.count(tokenizer.unk_token_id) for i in ids) / sum(map(len, ids))

    assert share(right) < MAX_UNK_SHARE / 10 < MAX_UNK_SHARE * 4 < share(wrong)
    check_unknown_share(right, texts)
    assert "[UNK]" in one_line(check_unknown_share, wrong, texts)


def test_text_the_vocabulary_cannot_read(tiny):
    korean = ["서울은 한국의 수도이다", "고양이가 매트 위에 앉아 있다"] * 10
    message = one_line(check_unknown_share, AutoTokenizer.from_pretrained(str(tiny)), korean)
    assert "does not fit this text" in message


# --------------------------------------------------------------------------- 2: config/weights


def test_gpt2_config_over_bert_weights(minilm):
    from transformers import GPT2Config

    replace(minilm / "config.json", GPT2Config().to_json_string())
    message = one_line(build_model, str(minilm))
    assert "names the 'gpt2' architecture (GPT2" in message
    assert "but the weights are a BERT-style encoder" in message
    assert "partial save" not in message and "config.json saved with these weights" in message


def test_bert_config_over_distilbert_weights(folder):
    config = BertConfig(vocab_size=1500, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128,
                        max_position_embeddings=128)
    (folder / "config.json").write_text(config.to_json_string(), encoding="utf-8")
    message = one_line(build_model, str(folder))
    assert "names the 'bert' architecture" in message
    assert "weights are a DistilBERT encoder" in message


# --------------------------------------------------------------------------- 3: activations


@pytest.mark.parametrize("field, value", [("activation", "nonexistent"), ("activation", 5),
                                          ("activation", None)])
def test_unknown_activation_in_an_unknown_checkpoint(folder, tmp_path, capsys, field, value):
    settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**settings, field: value}))
    line = run_cli(folder, tmp_path, capsys)
    assert f"{field} is {value!r}" in line and "gelu, gelu_10" in line and "relu" in line


def test_unknown_hidden_act_in_minilm(minilm):
    settings = json.loads((minilm / "config.json").read_text(encoding="utf-8"))
    replace(minilm / "config.json", json.dumps({**settings, "hidden_act": "nonexistent"}))
    message = one_line(build_model, str(minilm))
    assert "config.json: hidden_act is 'nonexistent'" in message and "'gelu'" in message


# --------------------------------------------------------------------------- 4: disk full


@pytest.mark.parametrize("text", [DISK_FULL, "failed to write: No space left on device",
                                  "I/O error: (os error 28)"])
def test_safetensors_disk_full_is_the_disk_full_line(tmp_path, text):
    def save(_path):
        raise SafetensorError(text)

    message = one_line(store.atomic_write, tmp_path / "w.safetensors", save)
    assert message.startswith("the disk is full while writing") and "--out" in message
    assert list(tmp_path.iterdir()) == []  # the partial temporary file is gone


def test_other_safetensors_errors_are_not_called_disk_full(tmp_path):
    def save(_path):
        raise SafetensorError("invalid tensor")

    with pytest.raises(SafetensorError):
        store.atomic_write(tmp_path / "w.safetensors", save)


def test_disk_full_while_saving_the_weights_after_training(tiny, tmp_path, capsys,
                                                           monkeypatch):
    def full(*_args, **_kwargs):
        raise SafetensorError(DISK_FULL)

    monkeypatch.setattr(experiments, "save_model", full)
    line = run_cli(tiny, tmp_path, capsys, "--train-size", "16")
    assert "the disk is full while writing" in line and ".safetensors" in line


# --------------------------------------------------------------------------- 5: folders


def blocked(tmp_path: Path) -> Path:
    (tmp_path / "somefile.txt").write_text("x", encoding="utf-8")
    return tmp_path / "somefile.txt" / "sub"


def test_folder_below_a_regular_file(tmp_path):
    target = blocked(tmp_path)
    for call in (lambda: store.make_folder(target),
                 lambda: store.atomic_write(target / "a.json", "{}"),
                 lambda: store.check_writable(target),
                 lambda: store.exclusive(target / ".lock", "testing").__enter__()):
        message = one_line(call)
        assert message == (f"cannot create folder {target}: {tmp_path / 'somefile.txt'} is a "
                           "file, not a folder; choose another --out (MNLI_LESSON_OUT_DIR)")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_folder_in_proc():
    message = one_line(store.make_folder, "/proc/mnli-lesson-x/y")
    assert message.startswith("cannot create folder /proc/mnli-lesson-x/y: ")
    assert message.endswith("; choose another --out (MNLI_LESSON_OUT_DIR)")


def test_out_below_a_regular_file_through_the_cli(tiny, tmp_path, capsys):
    argv = ["compare", "finetune-vs-frozen", "--profile", "tiny", "--model", str(tiny),
            "--out", str(blocked(tmp_path)), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: cannot create folder {blocked(tmp_path)}: "
                                f"{tmp_path / 'somefile.txt'} is a file, not a folder; "
                                "choose another --out (MNLI_LESSON_OUT_DIR)"]


def test_disk_full_when_creating_a_folder(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    assert "the disk is full" in one_line(store.make_folder, tmp_path / "x")


def test_config_field_of_the_wrong_type(folder, tmp_path, capsys):
    settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**settings, "dim": "sixty-four"}))
    line = run_cli(folder, tmp_path, capsys)
    assert "config.json holds a setting transformers refuses" in line
    assert "'dim'" in line and "sixty-four" in line and "config.json saved with" in line
