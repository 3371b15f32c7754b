#!/usr/bin/env bash
# Set up everything and run the assistant: action server on 5055, Rasa (REST channel) on 5005.
#   ./run.sh            run until Ctrl-C
#   ./run.sh shell      staff testing in the terminal (action server + rasa shell)
#   ./run.sh explain    staff explain mode: intent, route, facts and reply for each question
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_venv requirements.txt
build_knowledge
cd "$ROOT"
"$VENV/bin/python" -m bot train >/dev/null
case "${1:-serve}" in
  serve) exec "$VENV/bin/python" -m bot serve ;;
  shell) exec "$VENV/bin/python" -m bot shell ;;
  explain) shift; exec "$VENV/bin/python" -m bot explain "$@" ;;
  *) echo "usage: ./run.sh [serve|shell|explain [QUESTION...]]" >&2; exit 2 ;;
esac
