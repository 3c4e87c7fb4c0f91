"""End to end through the CLI: every mistake a user can make prints one line and exits 2.

Each case runs ``mnli_lesson.cli.main`` in-process on the ``tiny`` profile with a temporary
``--out``; a few run ``python -m mnli_lesson`` as a subprocess to prove that no traceback
reaches the terminal. The network is never used: where the Hub or Kaggle would be asked,
the test makes them unreachable (name lookup fails, or connections hang) and times the
failure. Ctrl-C between and inside runs exits 130, and running the command again resumes.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from mnli_lesson import core, experiments
from mnli_lesson.checkpoints import build_tiny_checkpoint
from mnli_lesson.cli import _notebook_env, _resolve, build_parser, field_docs, main
from mnli_lesson.config import LessonConfig, env_overrides, resolve_config
from mnli_lesson.data import reachable, sample_dir
from mnli_lesson.errors import LessonError

COMPARISON = "pretrained-vs-scratch"
SAMPLE_TRAIN_PAIRS = 2004  # the built-in sample's train.csv (the tiny profile uses 216)
# Runs that really train use 48 pairs (3 steps of 16 per epoch) and score 12 per split.
SMALL = ("--train-size", "48", "--eval-size", "12")
HAS_GPU = torch.cuda.is_available()


def compare_argv(out: Path, *extra: str, name: str = COMPARISON,
                 profile: str = "tiny") -> list[str]:
    return ["compare", name, "--profile", profile, "--out", str(out), "--no-progress", *extra]


def one_error_line(err: str) -> str:
    """The contract: exactly one line on stderr, starting with ``error:``, no traceback."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(autouse=True)
def _no_lesson_settings(clean_env):
    """No MNLI_LESSON_* settings leak in from the session (conftest sets some)."""
    return clean_env


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny model's matrices are too small to split: on a busy 2-core machine one thread
    trains several times faster than two (which then mostly wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return build_tiny_checkpoint()


def sample_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in sample_dir().glob("*.csv"):
        shutil.copy(split, folder / split.name)
    return folder


def edit(path: Path, change) -> None:
    path.write_bytes(change(path.read_bytes()))


def model_copy(tiny_model: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model, folder)
    return folder


# --------------------------------------------------------------------------- bad input cases
# Each builds what it needs under tmp_path and returns the extra CLI arguments.


def _missing_folder(tmp, m, tiny):
    return ["--data", str(tmp / "no-such-folder")]


def _lacks_a_split(tmp, m, tiny):
    data = sample_copy(tmp / "data")
    (data / "validation_mismatched.csv").unlink()
    return ["--data", str(data)]


def _a_file_not_a_folder(tmp, m, tiny):
    return ["--data", str(sample_dir() / "train.csv")]


def _env_data_is_a_file(tmp, m, tiny):
    m.setenv("MNLI_LESSON_DATA", str(sample_dir() / "train.csv"))
    return []


def _header(old: bytes, new: bytes):
    def change(data: Path):
        edit(data / "train.csv", lambda b: b.replace(old, new, 1))
    return change


def _corrupt(change):
    def case(tmp, m, tiny):
        data = sample_copy(tmp / "data")
        change(data)
        return ["--data", str(data)]
    return case


def _set_cell(row: int, column: str, value: str):
    """Put ``value`` in one cell of train.csv's data row ``row`` (0 = line 2), through the
    csv module: a byte pattern would depend on what the sample's rows happen to contain."""
    def change(data: Path):
        path = data / "train.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        rows[row + 1][rows[0].index(column)] = value
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\r\n").writerows(rows)  # the sample's endings
    return change


def _latin1_in_first_row(data: Path):
    """A Latin-1 byte (not UTF-8) in the first pair's premise, on line 2."""
    _set_cell(0, "premise", "The champion won.")(data)
    edit(data / "train.csv", lambda b: b.replace(b"champion", b"champi\xf3n", 1))


def _truncate_inside_a_quote(data: Path):
    def cut(b: bytes) -> bytes:
        return b[: b.index(b'\n"', len(b) // 2) + 12]
    edit(data / "train.csv", cut)


def _truncate_after_last_comma(data: Path):
    """Cut the last row just after the comma that ends its hypothesis: its label is empty."""
    def cut(b: bytes) -> bytes:
        body = b.rstrip()
        before_genre = body.rindex(b",")
        return body[: body.rindex(b",", 0, before_genre) + 1]
    edit(data / "train.csv", cut)


def _model_missing(tmp, m, tiny):
    return ["--model", str(tmp / "no-such-model")]


def _model_is_a_data_folder(tmp, m, tiny):
    return ["--model", str(sample_copy(tmp / "data"))]


def _model_without_a_classifier(tmp, m, tiny):
    folder = model_copy(tiny, tmp / "model")
    (folder / "config.json").write_text(json.dumps({"model_type": "vit"}), encoding="utf-8")
    return ["--model", str(folder)]


def _model_damaged_weights(tmp, m, tiny):
    folder = model_copy(tiny, tmp / "model")
    edit(folder / "model.safetensors", lambda b: b[:5])
    return ["--model", str(folder)]


def _model_without_tokenizer(tmp, m, tiny):
    folder = model_copy(tiny, tmp / "model")
    for path in folder.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()
    return ["--model", str(folder)]


def _args(*extra):
    return lambda tmp, m, tiny: list(extra)


def _env(key, value):
    def case(tmp, m, tiny):
        m.setenv(key, value)
        return []
    return case


def _out_is_a_file(tmp, m, tiny):
    (tmp / "a-file").write_text("x", encoding="utf-8")
    return ["--out", str(tmp / "a-file")]  # argparse: the last --out wins


GPU_ONLY = pytest.mark.skipif(HAS_GPU, reason="a GPU is present, so this is not a mistake")


BAD_INPUT = [
    # data folder
    pytest.param(_missing_folder, ["does not exist", "MNLI_LESSON_DATA"], id="data-missing"),
    pytest.param(_lacks_a_split, ["lacks validation_mismatched.csv"], id="data-lacks-split"),
    pytest.param(_a_file_not_a_folder, ["is a file, not a folder"], id="data-is-a-file"),
    pytest.param(_env_data_is_a_file, ["is a file, not a folder", "MNLI_LESSON_DATA"],
                 id="env-data-is-a-file"),
    # CSV contents
    pytest.param(_corrupt(_header(b"premise,hypothesis,label", b"premise,label")),
                 ["no 'hypothesis' column", "premise, hypothesis, label"], id="csv-missing-column"),
    pytest.param(_corrupt(_header(b"premise,hypothesis,label", b"premise,hypothsis,label")),
                 ["'hypothsis' looks misspelt", "rename it to 'hypothesis'"],
                 id="csv-misspelt-column"),
    pytest.param(_corrupt(_set_cell(0, "label", "5")),
                 ["line 2: label '5' is not an MNLI label", "0/1/2"], id="csv-label-5"),
    pytest.param(_corrupt(_set_cell(0, "label", "contradicton")),
                 ["'contradicton' is not an MNLI label", "entailment/neutral/contradiction"],
                 id="csv-label-misspelt"),
    pytest.param(_corrupt(_latin1_in_first_row),
                 ["not UTF-8 text (line 2", "re-save it as UTF-8"], id="csv-not-utf8"),
    pytest.param(_corrupt(_truncate_inside_a_quote), ["truncated", "download it again"],
                 id="csv-truncated-in-a-quote"),
    pytest.param(_corrupt(_truncate_after_last_comma), ["looks truncated", "download it again"],
                 id="csv-truncated-after-comma"),
    pytest.param(_corrupt(lambda d: (d / "validation_matched.csv").write_bytes(b"")),
                 ["validation_matched.csv is empty"], id="csv-empty"),
    pytest.param(_corrupt(lambda d: (d / "train.csv").write_bytes(b"premise,hypothesis,label\n")),
                 ["has no labelled pairs", "premise, hypothesis, label"], id="csv-header-only"),
    # model folder
    pytest.param(_model_missing, ["model folder", "does not exist", "MNLI_LESSON_MODEL"],
                 id="model-missing"),
    pytest.param(_model_is_a_data_folder, ["no config.json"], id="model-not-a-checkpoint"),
    pytest.param(_model_without_a_classifier, ["'vit' model", "no sequence classification head"],
                 id="model-no-classification-head"),
    pytest.param(_model_damaged_weights, ["model.safetensors is damaged"], id="model-damaged"),
    pytest.param(_model_without_tokenizer, ["no tokenizer files"], id="model-no-tokenizer"),
    # settings
    pytest.param(_args("--profile", "huge"), ["unknown profile 'huge'", "tiny"], id="profile"),
    pytest.param(_args("--epochs", "0"), ["epochs must be a positive number"], id="epochs-0"),
    pytest.param(_args("--batch-size", "-4"), ["batch_size must be a positive number"],
                 id="batch-size-negative"),
    pytest.param(_args("--lr", "0"), ["lr must be a positive number"], id="lr-0"),
    pytest.param(_args("--lr=-1e-3"), ["lr must be a positive number"], id="lr-negative"),
    pytest.param(_args("--lr", "nan"), ["argument --lr: 'nan' is not a valid finite number"],
                 id="lr-nan"),
    pytest.param(_args("--train-size", "0"), ["train_size must be a positive number"],
                 id="train-size-0"),
    pytest.param(_args("--eval-size", "-1"), ["eval_size must be a positive number"],
                 id="eval-size-negative"),
    pytest.param(_args("--max-length", "4"), ["max_length must be at least 8"], id="max-length"),
    pytest.param(_args("--max-length", "512"), ["max_length 512 is more than 'tiny' can read",
                                                "--max-length 128"], id="max-length-too-long"),
    pytest.param(_args("--seed", "-1"), ["seed must be a whole number"], id="seed-negative"),
    pytest.param(_args("--train-size", "999999"),
                 ["train_size asks for 999999", f"has only {SAMPLE_TRAIN_PAIRS}"],
                 id="train-size-larger-than-data"),
    pytest.param(_env("MNLI_LESSON_EPOCHS", "three"), ["MNLI_LESSON_EPOCHS='three'"],
                 id="env-epochs-three"),
    pytest.param(_env("MNLI_LESSON_EPOCH", "3"), ["unknown setting MNLI_LESSON_EPOCH"],
                 id="env-typo"),
    pytest.param(_args("--lr", "abc"),
                 ["argument --lr: 'abc' is not a valid finite number", "--help"], id="lr-abc"),
    pytest.param(_args("--train-size", "lots"), ["'lots' is not a valid int",
                                                 "use a whole number or 'all'"],
                 id="train-size-words"),
    pytest.param(_args("--sweep-sizes", "a,b"), ["argument --sweep-sizes: 'a,b'",
                                                 "like 250,1000"], id="sweep-sizes-words"),
    pytest.param(_out_is_a_file, ["is a file", "--out"], id="out-is-a-file"),
    # hardware
    pytest.param(_args("--device", "cuda"), ["no GPU", "cpu"], id="cuda-without-gpu",
                 marks=GPU_ONLY),
    pytest.param(_args("--precision", "fp16"), ["fp16 needs a GPU"], id="fp16-on-cpu",
                 marks=GPU_ONLY),
]


@pytest.mark.parametrize(("case", "expected"), BAD_INPUT)
def test_bad_input_prints_one_line_and_exits_2(case, expected, tmp_path, monkeypatch,
                                               tiny_model, capsys):
    out = tmp_path / "out"
    extra = case(tmp_path, monkeypatch, tiny_model)
    rc = main(compare_argv(out, *extra))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    for text in expected:
        assert text in line
    assert not list(out.rglob("*.json")), "a failed run must not leave results behind"


def test_sweep_size_larger_than_the_data_fails_before_training(tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(experiments, "train", lambda *a, **k: trained.append(k) or 1 / 0)
    rc = main(compare_argv(tmp_path, "--sweep-sizes", "36,5000", name="data-efficiency"))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "sweep_sizes asks for 5000" in line
    assert not trained, "the too-large size must be refused before the small ones train"


def test_unknown_comparison_is_one_line(tmp_path, capsys):
    rc = main(compare_argv(tmp_path, name="bigger-vs-smaller"))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "invalid choice: 'bigger-vs-smaller'" in line


def test_help_still_works(capsys):
    assert main(["compare", "--help"]) == 0
    assert "--train-size" in capsys.readouterr().out


# --------------------------------------------------------------------------- one flag per field
#: A valid value, other than the tiny profile's, for each text setting.
TEXT_EXAMPLES = {"profile": "offline", "data": "kaggle", "model": "distilbert-base-uncased",
                 "precision": "fp32", "device": "cpu", "out_dir": "elsewhere"}


def _example(name: str, tiny_value: object) -> tuple[str, object]:
    """A valid value for field ``name`` that differs from the tiny profile's: as flag text,
    and as the resolved configuration must then hold it."""
    if name in TEXT_EXAMPLES:
        return TEXT_EXAMPLES[name], TEXT_EXAMPLES[name]
    if isinstance(tiny_value, tuple):
        value = tuple(n + 1 for n in tiny_value)
        return ",".join(map(str, value)), value
    if isinstance(tiny_value, float):
        return repr(tiny_value / 2), tiny_value / 2
    if isinstance(tiny_value, int):
        return str(tiny_value + 1), tiny_value + 1
    raise AssertionError(f"new field {name!r}: give it an example value in TEXT_EXAMPLES")


def _parse(capsys, *argv: str):
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"mnli-lesson {' '.join(argv)}: {capsys.readouterr().err}")


def test_every_config_field_is_a_flag(tmp_path, monkeypatch, capsys):
    """Every LessonConfig field has a flag ``--<field-with-dashes>`` on config, compare and
    lesson, documented by the field's docstring; its value reaches the resolved configuration
    and, for `lesson`, the notebooks' MNLI_LESSON_<FIELD> variable."""
    monkeypatch.chdir(tmp_path)  # no folder called like an example --data / --model here
    tiny = resolve_config("tiny", environ={})
    docs = field_docs()
    for f in fields(LessonConfig):
        flag = "--" + f.name.replace("_", "-")
        text, expected = _example(f.name, getattr(tiny, f.name))
        assert docs.get(f.name), f"LessonConfig.{f.name} has no docstring for {flag}'s help"
        for command in (["config"], ["compare", COMPARISON], ["lesson"]):
            args = _parse(capsys, *command, "--profile", "tiny", flag, text)
            cfg = _resolve(args)
            assert getattr(cfg, f.name) == expected, f"{' '.join(command)} {flag} {text}"
        env = _notebook_env(args, cfg, tmp_path / "o")  # the `lesson` one
        if f.name != "out_dir":  # that one is always the checked, absolute output folder
            assert env_overrides(env)[f.name] == expected, (flag, env)
    args = _parse(capsys, "lesson", "--profile", "tiny", "--train-size", "all", "--out", "x")
    assert (_resolve(args).train_size, _resolve(args).out_dir) == (None, "x")
    assert _notebook_env(args, _resolve(args), tmp_path)["MNLI_LESSON_TRAIN_SIZE"] == "all"


@pytest.mark.parametrize(("flag", "text"), [("--epochs", "three"), ("--eval-batch-size", "1.5"),
                                            ("--warmup-ratio", "a tenth"),
                                            ("--sweep-min-steps", "many"),
                                            ("--eval-size", "half"), ("--sweep-sizes", "1,x")])
def test_a_bad_flag_value_is_the_variables_one_line(flag, text, capsys):
    """A generated flag refuses what MNLI_LESSON_<FIELD> refuses, for the same reason, in one
    line that names the flag (not the variable), before anything runs."""
    name = flag[2:].replace("-", "_")
    with pytest.raises(LessonError) as refused:
        env_overrides({f"MNLI_LESSON_{name.upper()}": text})
    reason = str(refused.value).split("=", 1)[1]  # "'three' is not a valid int"
    assert main(["config", "--profile", "tiny", flag, text]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"argument {flag}: {reason}" in line and "MNLI_LESSON_" not in line
    assert "--help" in line


# --------------------------------------------------------------------------- output folder
# A bad --out must fail before anything trains (store.check_writable), in one line.


@pytest.fixture
def no_training(monkeypatch) -> list[dict]:
    """Calls of experiments.train: none may happen before an output-folder error."""
    calls: list[dict] = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        raise AssertionError("trained before the output folder was checked")

    monkeypatch.setattr(experiments, "train", spy)
    return calls


def _refuse_writes(monkeypatch, folder: Path, code: int) -> None:
    """Files in ``folder`` fail with ``code`` (as root, chmod stops nothing). A full disk
    lets a file be created and fails part-way through writing it; otherwise creating it fails."""
    def inside(path) -> bool:
        return Path(os.fsdecode(path)).parent == folder

    if code == errno.ENOSPC:
        real_write_bytes = Path.write_bytes

        def write_bytes(self, data):
            if not inside(self):
                return real_write_bytes(self, data)
            real_write_bytes(self, data[:1])  # what fitted before the disk filled up
            raise OSError(code, os.strerror(code), str(self))

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        return
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if inside(path) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)


REFUSED_WRITES = [
    pytest.param(errno.EACCES, ["permission denied or read-only", "--out"], id="permission"),
    pytest.param(errno.EROFS, ["permission denied or read-only", "--out"], id="read-only"),
    pytest.param(errno.ENOSPC, ["the disk is full", "free some space", "--out"], id="disk-full"),
    pytest.param(errno.ENAMETOOLONG, ["too long", "shorter folder with --out"], id="name-too-long"),
]


@pytest.mark.parametrize(("code", "expected"), REFUSED_WRITES)
def test_out_that_refuses_writes(code, expected, tmp_path, monkeypatch, capsys, no_training):
    out = tmp_path / "out"
    out.mkdir()  # the folder is there; writing into it fails
    _refuse_writes(monkeypatch, out, code)
    rc = main(compare_argv(out))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    for text in expected:
        assert text in line
    assert str(out) in line
    assert not no_training
    assert list(out.iterdir()) == [], "a failed write must not leave a (hidden) file behind"


def test_out_on_a_nearly_full_disk(tmp_path, monkeypatch, capsys, no_training):
    real_statvfs = os.statvfs

    def nearly_full(path):
        found = real_statvfs(path)
        return os.statvfs_result((*found[:4], 10, *found[5:]))  # f_bavail: 10 blocks

    monkeypatch.setattr(os, "statvfs", nearly_full)
    rc = main(compare_argv(tmp_path / "out"))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert "MB free" in line and "free some space" in line and "--out" in line
    assert not no_training


def _self_loop(tmp: Path) -> Path:
    (tmp / "loop").symlink_to("loop")
    return tmp / "loop"


def _two_link_loop(tmp: Path) -> Path:
    (tmp / "a").symlink_to("b")
    (tmp / "b").symlink_to("a")
    return tmp / "a"


def _inside_a_loop(tmp: Path) -> Path:
    return _self_loop(tmp) / "results"


@pytest.mark.parametrize(("make", "expected"), [
    pytest.param(_self_loop, ["link", "--out"], id="self"),
    pytest.param(_two_link_loop, ["link", "--out"], id="two-links"),
    pytest.param(_inside_a_loop, ["symbolic link that loops", "--out"], id="inside"),
])
def test_out_is_a_symbolic_link_loop(make, expected, tmp_path, capsys, no_training):
    out = make(tmp_path)
    rc = main(compare_argv(out))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    for text in expected:
        assert text in line
    assert not no_training


@pytest.mark.parametrize("parts", [
    pytest.param(["x" * 300], id="name-over-255-bytes"),
    pytest.param(["y" * 200] * 25, id="path-over-4096-bytes"),
])
def test_out_path_too_long(parts, tmp_path, capsys, no_training):
    out = tmp_path.joinpath(*parts)
    rc = main(compare_argv(out))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert "too long" in line and "--out" in line
    assert not no_training


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_out_under_the_home_folder(how, tmp_path, monkeypatch, capsys):
    """``--out=~/x`` (which the shell leaves alone) and MNLI_LESSON_OUT_DIR=~/x."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)  # where an unexpanded "~" folder would appear
    argv = ["compare", COMPARISON, "--profile", "tiny", "--no-progress", "--epochs", "1", *SMALL]
    if how == "argument":
        argv.append("--out=~/x")
    else:
        monkeypatch.setenv("MNLI_LESSON_OUT_DIR", "~/x")
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err and "error:" not in err
    printed = [Path(line.split(": ", 1)[1]) for line in out.splitlines()
               if line.startswith(("figure: ", "results: "))]
    assert len(printed) == 4, out  # three figures and the summary
    for path in printed:
        assert path.is_relative_to(home / "x") and path.is_file(), path
    assert list((home / "x" / COMPARISON).glob("pretrained-*.json"))
    assert not (cwd / "~").exists()


# --------------------------------------------------------------------------- as a subprocess


def run_module(*args: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m mnli_lesson ARGS`` with no MNLI_LESSON_* settings and an offline Hub."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MNLI_LESSON_")}
    base.update(HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "mnli_lesson", *args], capture_output=True,
                          text=True, env=base, timeout=timeout)


SUBPROCESS_CASES = [  # argparse, config, and (the slow one: torch is imported) the data
    pytest.param(_args("--lr", "abc"), ["argument --lr: 'abc' is not a valid finite number"],
                 id="lr-abc"),
    pytest.param(_args("--epochs", "0"), ["epochs must be a positive number"], id="epochs-0"),
    pytest.param(_corrupt(_set_cell(0, "label", "5")), ["label '5'"], id="csv-label-5"),
]


@pytest.mark.parametrize(("case", "expected"), SUBPROCESS_CASES)
def test_subprocess_prints_no_traceback(case, expected, tmp_path, monkeypatch, tiny_model):
    extra = case(tmp_path, monkeypatch, tiny_model)
    done = run_module(*compare_argv(tmp_path / "out", *extra))
    line = one_error_line(done.stderr)
    assert done.returncode == 2
    for text in expected:
        assert text in line


# --------------------------------------------------------------------------- no network


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    """Neither the Hub's nor kagglehub's cache holds anything."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    return tmp_path


def _dns_fails(*args, **kwargs):
    raise socket.gaierror(-3, "Temporary failure in name resolution")


def _hangs(*args, **kwargs):  # a firewall that drops packets: nothing ever answers
    time.sleep(60)
    raise TimeoutError("timed out")


SOURCES = {
    "kaggle": (["--data", "kaggle"], ["Kaggle cannot be reached", "MNLI_LESSON_DATA",
                                      "MNLI_LESSON_PROFILE=offline"]),
    "hub": (["--model", "some-org/some-model"], ["'some-org/some-model'", "MNLI_LESSON_MODEL",
                                                 "MNLI_LESSON_PROFILE=offline"]),
}


@pytest.mark.parametrize("hf_offline", ["1", None], ids=["hf-offline", "hf-online"])
@pytest.mark.parametrize("network", [_dns_fails, _hangs], ids=["no-dns", "hangs"])
@pytest.mark.parametrize("source", list(SOURCES))
def test_unreachable_hub_or_kaggle_fails_fast(source, network, hf_offline, empty_caches,
                                              monkeypatch, capsys):
    if hf_offline is None:  # (the heavy imports happened when this module was imported)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", hf_offline)
    monkeypatch.setattr(socket, "create_connection", network)
    extra, expected = SOURCES[source]
    start = time.monotonic()
    rc = main(compare_argv(empty_caches / "out", *extra))
    seconds = time.monotonic() - start
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert seconds < 5, f"took {seconds:.1f} s"
    for text in expected:
        assert text in line


DRIVER = """
import json, sys, time
import mnli_lesson.experiments  # heavy imports before the clock starts
from mnli_lesson.cli import _notebook_env, _resolve, build_parser, field_docs, main
from mnli_lesson.config import LessonConfig, env_overrides, resolve_config
for source, extra in (("kaggle", ["--data", "kaggle"]),
                      ("hub", ["--model", "some-org/some-model"])):
    start = time.monotonic()
    rc = main(["compare", "pretrained-vs-scratch", "--profile", "tiny", "--no-progress",
               "--out", sys.argv[1], *extra])
    print("RESULT " + json.dumps({"source": source, "rc": rc, "s": time.monotonic() - start}))
"""


def test_really_offline_in_a_fresh_process(tmp_path):
    """This machine's own network (no monkeypatching), with empty caches from the start and
    HF_HUB_OFFLINE unset, so the Hub is really asked (the in-process tests cover both)."""
    if reachable("huggingface.co", timeout=2) or reachable("www.kaggle.com", timeout=2):
        pytest.skip("this machine is online; the offline path cannot be tried for real")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MNLI_LESSON_") and k not in ("HF_HUB_OFFLINE", "HF_HUB_CACHE")}
    env.update(HF_HOME=str(tmp_path / "hf"), KAGGLEHUB_CACHE=str(tmp_path / "kaggle"))
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    results = [json.loads(line[7:]) for line in done.stdout.splitlines()
               if line.startswith("RESULT ")]
    assert [r["source"] for r in results] == ["kaggle", "hub"], done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines), done.stderr
    for result, line in zip(results, lines, strict=True):
        assert result["rc"] == 2
        assert result["s"] < 5, result
        for text in SOURCES[result["source"]][1][1:]:
            assert text in line


# --------------------------------------------------------------------------- finished runs


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished one-epoch comparison, to copy and damage."""
    out = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as m:
        for key in [k for k in os.environ if k.startswith("MNLI_LESSON_")]:
            m.delenv(key)
        assert main(compare_argv(out, "--epochs", "1", *SMALL)) == 0
    return out


def copy_of(finished: Path, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    folder = out / COMPARISON
    files = {slug: next(folder.glob(f"{slug}-*.json")) for slug in ("pretrained", "scratch")}
    return out, files


def test_rerun_of_a_finished_comparison_reloads_it(finished, tmp_path, monkeypatch, capsys):
    out, files = copy_of(finished, tmp_path)
    stamps = {slug: path.stat().st_mtime_ns for slug, path in files.items()}
    monkeypatch.setattr(experiments, "train", lambda *a, **k: pytest.fail("retrained"))
    assert main(compare_argv(out, "--epochs", "1", *SMALL)) == 0
    assert capsys.readouterr().err == ""
    assert {slug: path.stat().st_mtime_ns for slug, path in files.items()} == stamps


def test_results_file_truncated_by_hand(finished, tmp_path, capsys):
    out, files = copy_of(finished, tmp_path)
    edit(files["pretrained"], lambda b: b[: len(b) // 2])
    rc = main(compare_argv(out, "--epochs", "1", *SMALL))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert files["pretrained"].name in line and "damaged" in line and "delete it" in line


def test_results_file_that_is_not_results(finished, tmp_path, capsys):
    out, files = copy_of(finished, tmp_path)
    files["scratch"].write_text("{}", encoding="utf-8")
    rc = main(compare_argv(out, "--epochs", "1", *SMALL))
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "not a finished run's results" in line and "delete it" in line


# --------------------------------------------------------------------------- Ctrl-C


def result_file(out: Path, slug: str) -> Path | None:
    found = list((out / COMPARISON).glob(f"{slug}-*.json"))
    assert len(found) <= 1
    return found[0] if found else None


def test_interrupt_between_runs_resumes_from_the_finished_ones(tmp_path, monkeypatch, capsys,
                                                                record_training):
    out, argv = tmp_path / "out", compare_argv(tmp_path / "out", "--epochs", "1", *SMALL)
    real_run, started = experiments.run, []

    def second_run_interrupted(planned, *args, **kwargs):
        started.append(planned.spec.slug)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real_run(planned, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(experiments, "run", second_run_interrupted)
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ["interrupted: run the same command again to resume"]
    first = result_file(out, "pretrained")
    assert first is not None and result_file(out, "scratch") is None
    stamp = first.stat().st_mtime_ns

    trained = record_training()
    assert main(argv) == 0
    assert trained == ["from scratch"], "the finished run must be reloaded, not retrained"
    assert first.stat().st_mtime_ns == stamp
    assert json.loads(result_file(out, "scratch").read_text())["interrupted"] is False


def test_ctrl_c_inside_a_run_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys,
                                                         record_training):
    """Ctrl-C at step 5 of the second run (3 epochs of 3 steps): its checkpoint at step 3 is
    kept, and the next invocation continues from there."""
    # One checkpoint, at step 3 (the clock-based ones would never fire in a run this short).
    monkeypatch.setattr(experiments, "FIRST_CHECKPOINT_STEP", 3)
    monkeypatch.setattr(experiments, "CHECKPOINT_SECONDS", None)
    out, argv = tmp_path / "out", compare_argv(tmp_path / "out", "--epochs", "3", *SMALL)
    current = {"run": None, "steps": 0}
    real_train, real_step = experiments.train, core.training_step

    def tracking_train(*args, **kwargs):
        current.update(run=kwargs["desc"], steps=0)
        return real_train(*args, **kwargs)

    def interrupting_step(*args, **kwargs):
        if current["run"] == "from scratch":
            current["steps"] += 1
            if current["steps"] == 5:
                raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(experiments, "train", tracking_train)
        m.setattr(core, "training_step", interrupting_step)
        assert main(argv) == 130
    assert capsys.readouterr().err.splitlines() == [
        "interrupted: run the same command again to resume"]
    first = result_file(out, "pretrained")
    assert first is not None and result_file(out, "scratch") is None
    (ckpt,) = (out / COMPARISON).glob("scratch-*.ckpt")
    assert json.loads((ckpt / "latest.json").read_text()) == {"step": 3}
    stamp = first.stat().st_mtime_ns

    trained = record_training()
    assert main(argv) == 0
    assert trained == ["from scratch"]
    assert first.stat().st_mtime_ns == stamp
    scratch = json.loads(result_file(out, "scratch").read_text())
    assert scratch["resumed_from_step"] == 3 and not scratch["interrupted"]
    assert [h["step"] for h in scratch["history"]] == list(range(1, 10))
    assert not ckpt.exists(), "a finished run's checkpoint is removed"


def test_ctrl_c_during_a_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    """A sweep run scores only at its end, so a stopped one has no scores to plot."""
    calls = {"n": 0}
    real_step = core.training_step

    def interrupting_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(core, "training_step", interrupting_step)
    rc = main(compare_argv(tmp_path, "--sweep-sizes", "36", name="data-efficiency"))
    assert rc == 130
    assert capsys.readouterr().err.splitlines() == [
        "interrupted: run the same command again to resume"]


@pytest.mark.parametrize("flag, value", [("--timeout", "nan"), ("--timeout", "inf"),
                                         ("--timeout", "0"), ("--jobs", "0"),
                                         ("--jobs", "1e9")])
def test_grade_numbers_are_checked_before_anything_runs(tmp_path, capsys, flag, value):
    """A timeout of nan gave every cell 1 s; inf crashed inside the grader: both refused."""
    assert main(["grade", str(tmp_path), "--release", str(tmp_path), "--out",
                 str(tmp_path / "g.csv"), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: argument {flag}: '{value}' is not a") and "\n" not in err
    assert not (tmp_path / "g.csv").exists()


def test_a_full_disk_while_lesson_writes_a_notebook_is_one_line_and_leaves_no_file(
        tmp_path, monkeypatch):
    """The executed copy goes through a temporary file: a full disk leaves no empty notebook
    behind (the next run would refuse it as not its own)."""
    import nbformat

    from mnli_lesson.ledger import Ledger
    from mnli_lesson.lesson_notebooks import execute_all

    source = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]),
                   str(source))
    target = tmp_path / "out"
    target.mkdir()

    def full_disk(nb, path, **kwargs):
        Path(path).write_text("{")  # part of the notebook, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nbformat, "write", full_disk)
    with pytest.raises(LessonError) as caught:
        execute_all([source], target, tmp_path, "tiny", Ledger(target, "lesson"))
    assert str(caught.value).startswith(f"the disk is full while writing {target / '01_x.ipynb'}")
    assert not (target / "01_x.ipynb").exists()
    assert [p.name for p in target.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("executed, expected", [
    ("", "--executed is empty"),
    ("/proc/mnli-x", "cannot create folder /proc/mnli-x"),
    ("afile/x", "afile is a file, not a folder; choose another --executed"),
    ("subs/alice", "is inside the submissions folder"),
])
def test_grade_executed_folder_is_checked_before_anything_runs(tmp_path, capsys, monkeypatch,
                                                               executed, expected):
    """An empty --executed was ignored, /proc or a file gave tracebacks after grading, and a
    folder inside the submissions became submissions at the next grading."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "subs").mkdir()
    assert main(["grade", "subs", "--release", str(tmp_path), "--out", "g.csv",
                 "--executed", executed]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "g.csv").exists() and not (tmp_path / "subs" / "alice").exists()
    assert not (tmp_path / "g-feedback").exists()  # nothing left beside --out either


def test_assignment_with_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    """Path('') is the current folder: solution/ and student/ appeared where the user stood."""
    monkeypatch.chdir(tmp_path)
    assert main(["assignment", "--out", ""]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --out is empty: name the folder for solution/ and student/")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, content", [
    ("latest.json", '{"notes": "my own"}'), ("latest.json", "plain text"),
    ("summary-{fp}.json", '{"kind": "run"}'), ("figures-{fp}/accuracy.png", "my notes")])
def test_compare_never_replaces_a_results_file_it_did_not_write(tmp_path, capsys, name,
                                                                content):
    """A second run over compare's own files replaces them; a user's file of the same name
    is refused in one line and left as it was."""
    argv = compare_argv(tmp_path, "--train-size", "48", "--epochs", "1")
    assert main(argv) == 0  # the comparison's own files: a rerun may replace them
    folder = tmp_path / COMPARISON
    fp = json.loads((folder / "latest.json").read_text())["figures"].removeprefix("figures-")
    assert main(argv) == 0
    capsys.readouterr()
    mine = folder / name.format(fp=fp)
    mine.write_text(content)
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{mine} was not written by `mnli-lesson compare`" in line
    assert mine.read_text() == content


def test_compare_refuses_a_users_latest_json_before_training(tmp_path, capsys):
    folder = tmp_path / COMPARISON
    folder.mkdir()
    (folder / "latest.json").write_text('{"notes": "my own"}')
    assert main(compare_argv(tmp_path, "--train-size", "48", "--epochs", "1")) == 2
    assert "latest.json was not written by" in one_error_line(capsys.readouterr().err)
    assert [p.name for p in folder.iterdir()] == ["latest.json"]  # no run was trained


def test_grade_out_in_a_folder_that_takes_no_files_names_that_folder(tmp_path, capsys):
    """The write probe inside the folder is ours; the line names the folder the user gave."""
    assert main(["grade", str(tmp_path), "--release", str(tmp_path), "--out",
                 "/proc/grades.csv"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "/proc" in line and ".mnli-write-test" not in line
