#!/usr/bin/env bash
# Set up everything and run every test: unit tests, `rasa data validate`, conversation tests
# (`rasa test --fail-on-prediction-errors`), end-to-end, fault and browser tests against the real
# servers on every channel, and the cluster tests (real PostgreSQL, Redis and haproxy).
# The model is trained at most once per run (and not at all when config and data are unchanged).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_venv requirements-test.txt
ensure_actions_venv
ensure_web
ensure_chromium
ensure_cluster_packages optional
build_knowledge
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
