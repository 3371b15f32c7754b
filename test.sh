#!/usr/bin/env bash
# Set up everything and run every test: unit tests, `rasa data validate`, conversation tests
# (`rasa test --fail-on-prediction-errors`), end-to-end, fault and browser tests against the real
# servers on every channel, and the cluster tests (real PostgreSQL, Redis and haproxy).
# The model is trained at most once per run (and not at all when config and data are unchanged).
#
# ./test.sh --fast: the fast tier - every test that starts no server and does not run Rasa's own
# command line (pytest -m "not servers and not slow"), in under two minutes once the model is trained.
set -euo pipefail
FAST=0
if [[ "${1:-}" == "--fast" ]]; then
  FAST=1
  shift
fi
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_venv requirements-test.txt
ensure_actions_venv
ensure_web
if (( ! FAST )); then
  ensure_chromium
  ensure_cluster_packages optional
fi
build_knowledge
cd "$ROOT"
if (( FAST )); then
  exec "$VENV/bin/python" -m pytest -m "not servers and not slow" "$@"
fi
exec "$VENV/bin/python" -m pytest "$@"
