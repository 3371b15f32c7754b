#!/usr/bin/env bash
# Set up everything and run the assistant: action server on 5055, Rasa (REST and web chat) on 5005,
# the demo page with the widget on 8080, under supervisord.
#   ./run.sh            run until Ctrl-C
#   ./run.sh cluster    the same with PostgreSQL, Redis, haproxy and 2 Rasa instances (RASA_INSTANCES)
#   ./run.sh setup      only set up (venv, knowledge base, spaCy pipeline, model) and exit
#   ./run.sh shell      staff testing in the terminal (action server + rasa shell)
#   ./run.sh explain    staff explain mode: intent, route, facts and reply for each question
#   ./run.sh evaluate   accuracy and safety report (reports/report.md)
#   ./run.sh benchmark  speed, load and resource benchmark (reports/report.md)
#   ./run.sh create-staff NAME   a staff account for the dashboard at http://127.0.0.1:8080/staff/
#   ./run.sh purge [--dry-run]   delete conversations and records older than RETENTION_DAYS
#   ./run.sh export-clinic       the approved clinic answers to knowledge/clinic/*.yml
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_venv requirements.txt
ensure_actions_venv
ensure_web
if [ "${1:-}" = "cluster" ]; then ensure_cluster_packages required; fi
if [ "${1:-}" = "benchmark" ]; then ensure_cluster_packages optional; fi
cd "$ROOT"
case "${1:-serve}" in
  # staff commands need neither a rebuild nor a model: they never touch a running assistant's files
  create-staff|purge|export-clinic) ;;
  *) build_knowledge; "$VENV/bin/python" -m bot train --quiet ;;
esac
case "${1:-serve}" in
  setup) echo "Set up: $VENV, the knowledge base, the spaCy pipeline and the model in models/." ;;
  serve) exec "$VENV/bin/python" -m bot serve ;;
  cluster) exec "$VENV/bin/python" -m bot serve --cluster ;;
  shell) exec "$VENV/bin/python" -m bot shell ;;
  explain) shift; exec "$VENV/bin/python" -m bot explain "$@" ;;
  evaluate) shift; exec "$VENV/bin/python" -m bot evaluate "$@" ;;
  benchmark) shift; exec "$VENV/bin/python" -m bot benchmark "$@" ;;
  create-staff) shift; exec "$VENV/bin/python" -m bot create-staff "$@" ;;
  purge) shift; exec "$VENV/bin/python" -m bot purge "$@" ;;
  export-clinic) shift; exec "$VENV/bin/python" -m bot export-clinic "$@" ;;
  *) echo "usage: ./run.sh [serve|cluster|setup|shell|explain [QUESTION...]|evaluate|benchmark|create-staff NAME|purge [--dry-run]|export-clinic]" >&2; exit 2 ;;
esac
