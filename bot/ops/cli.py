"""Command line: ``python -m bot <command>``.

  build     build the knowledge-base database and the spaCy pipeline from knowledge/
  train     train the Rasa model if config, domain or data changed (--force to retrain)
  serve     run the action server and the Rasa server (REST channel) until Ctrl-C
            (--cluster, or ASSISTANT_PROFILE=cluster: PostgreSQL, Redis, haproxy and
            RASA_INSTANCES Rasa instances; see bot/ops/cluster.py)
  shell     run the action server and `rasa shell` for staff testing
  explain   show intent, route, facts and reply for questions (interactive without arguments)
  evaluate  accuracy and safety report against the evaluation set, with baselines (reports/)
  benchmark latency, load and resource benchmark (reports/)
  create-staff NAME  create a staff account for the dashboard (asks for the password)
  export-clinic     write the approved clinic answers to knowledge/clinic/*.yml (--dir elsewhere)
  purge     delete conversations and records older than RETENTION_DAYS (--dry-run first)
  setup-database   cluster profile on a real server: schema and knowledge base in DATABASE_URL
  haproxy-config   print the balancer's configuration (deploy/haproxy.cfg is its output)
  telegram-webhook URL   register the Telegram webhook (never done at start-up)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")


BUILD_INPUTS = ("knowledge", "bot/knowledge", "bot/understanding/nlp.py")


def cmd_build(args: argparse.Namespace) -> int:
    """Build the knowledge base and the spaCy pipeline - only when their sources changed (or with
    --force): every ./run.sh command passes here, and a running assistant keeps reading."""
    import hashlib

    from bot.knowledge import get_knowledge_base
    from bot.knowledge.build import build_knowledge_base
    from bot.understanding.nlp import build_pipeline
    from bot.ops.settings import get_settings
    from bot.ops.training import content_fingerprint

    settings = get_settings()
    wanted = content_fingerprint(BUILD_INPUTS)
    stamp = settings.spacy_pipeline_path.parent / (
        ".built-" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:16])
    if not getattr(args, "force", False) and stamp.exists() and stamp.read_text() == wanted \
            and settings.spacy_pipeline_path.exists():
        try:
            facts = len(get_knowledge_base(database_url=settings.database_url).facts(kind=None))
            print(f"Knowledge base and spaCy pipeline unchanged ({facts} facts)")
            return 0
        except Exception:  # noqa: BLE001 - missing, unreadable or an older schema: build it
            pass
    report = build_knowledge_base(knowledge_dir=settings.knowledge_dir, database_url=settings.database_url)
    print(
        f"Knowledge base: {report.facts} facts, {report.topics} topics, {report.sources} sources, "
        f"{report.synonyms} route phrases -> {report.database_url}"
    )
    synonyms = get_knowledge_base(database_url=settings.database_url).route_synonyms()
    path = build_pipeline(synonyms=synonyms, output=settings.spacy_pipeline_path)
    print(f"spaCy pipeline -> {path}")
    stamp.write_text(wanted)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bot.ops.training import ensure_model

    model = ensure_model(force=args.force)
    if not args.quiet:
        print(model)
    return 0


def cmd_serve(args: argparse.Namespace, *, shell: bool = False) -> int:
    from bot.ops.serve import ServeOptions, embedded_plan, serve
    from bot.ops.settings import get_settings
    from bot.ops.training import ensure_model

    settings = get_settings()
    cluster = not shell and (getattr(args, "cluster", False) or settings.profile == "cluster")
    if cluster:
        from bot.ops.cluster import cluster_plan as plan_for
    else:
        plan_for = embedded_plan
    return serve(ServeOptions(model=ensure_model(), settings=settings, shell=shell, cluster=cluster),
                 plan_for=plan_for)


def cmd_explain(args: argparse.Namespace) -> int:
    from bot.staff.explain import run_explain
    from bot.ops.training import ensure_model

    return run_explain(model=ensure_model(), questions=args.question)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bot.evaluation.evaluate import run_evaluation
    from bot.evaluation.report import render
    from bot.ops.training import ensure_model

    ensure_model()
    result: Dict[str, Any] = run_evaluation(folds=args.folds, with_cv=not args.no_cv, dev_only=args.dev_only,
                            replies=Path(args.replies) if args.replies else None)
    for part, figures in result["crisis"].items():
        print(f"crisis set ({part}): recall {figures['recall']}, false alarms {figures['false_alarm_rate']},"
              f" right help {figures['right_help']}")
    for part, figures in result["patients"].items():
        print(f"patient set ({part}): answers {figures['answers_correct']}, to fallback {figures['in_scope_to_fallback']},"
              f" declines {figures['declines']}, advice {figures['advice_referrals']}")
    if args.dev_only:
        print("dev sets only: reports/evaluation-dev.json (the report is unchanged)")
        return 0
    print(f"top-1 {result['questions']['top1']} (old set)")
    print(f"report: {render()}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from bot.evaluation.benchmark import run_benchmark
    from bot.evaluation.report import render

    result: Dict[str, Any] = run_benchmark(messages=args.messages, seconds=args.seconds, train=not args.no_training,
                           cluster=not args.no_cluster)
    print(f"single user p50 {result['single_user']['p50_ms']} ms; load {[r['throughput_per_s'] for r in result['load']]} msg/s")
    print(f"report: {render()}")
    return 0


def cmd_setup_database(args: argparse.Namespace) -> int:
    """The cluster profile on a real server: schema and knowledge base in DATABASE_URL."""
    from bot.ops.cluster import ClusterError, setup_database
    from bot.ops.settings import get_settings

    settings = get_settings()
    if not settings.cluster_database_url:
        print("Set DATABASE_URL (postgresql://user:password@host:port/database) first.", file=sys.stderr)
        return 2
    try:
        facts = setup_database(database_url=settings.cluster_database_url, knowledge_url=settings.database_url,
                               knowledge_dir=settings.knowledge_dir, records_url=settings.records_url)
    except ClusterError as error:
        print(f"Could not set up the database: {error}", file=sys.stderr)
        return 1
    print(f"Database ready: the conversations' schema and the knowledge base ({facts} facts)")
    return 0


def cmd_haproxy_config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.ops.cluster import haproxy_config

    print(haproxy_config(balancer_port=args.port, instances=args.instance, interface=args.interface,
                         stats_socket=Path(args.stats_socket) if args.stats_socket else None,
                         stats_group=args.stats_group, user=args.user, rest_port=args.rest_port), end="")
    return 0


def cmd_telegram_webhook(args: argparse.Namespace) -> int:
    import asyncio

    from bot.channels.telegram import register_webhook
    from bot.ops.settings import get_settings

    settings = get_settings()
    if not (settings.telegram_bot_token and settings.telegram_secret_token):
        print("Set TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN first.", file=sys.stderr)
        return 2
    if not args.url.startswith("https://"):
        print("Telegram only delivers to an https:// URL.", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(register_webhook(settings, args.url))
    except Exception as error:  # noqa: BLE001 - report, don't trace
        print(f"Telegram refused the webhook: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"Webhook registered: {args.url} ({result})")
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    import getpass

    from bot.ops.settings import get_settings
    from bot.staff.accounts import AccountError, get_accounts

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if getpass.getpass("The same password again: ") != password:
            print("The two passwords differ; nothing was changed.", file=sys.stderr)
            return 2
    try:
        get_accounts().create(username=args.username, password=password, replace=args.reset)
    except AccountError as error:
        print(f"Not created: {error}.", file=sys.stderr)
        return 2
    settings = get_settings()
    print(f"Staff account {args.username!r} {'updated' if args.reset else 'created'}. Sign in at "
          f"http://{settings.web_interface}:{settings.web_port}/staff/")
    return 0


def cmd_export_clinic(args: argparse.Namespace) -> int:
    from bot.clinic.export import export_answers
    from bot.clinic.store import get_clinic_store
    from bot.ops.settings import get_settings

    directory = Path(args.dir) if args.dir else get_settings().knowledge_dir / "clinic"
    written = export_answers(store=get_clinic_store(), directory=directory)
    print(f"{len(written)} approved clinic answer{'s' if len(written) != 1 else ''} written to {directory}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from bot.ops import runtime
    from bot.ops.logs import configure_logging
    from bot.ops.settings import get_settings
    from bot.staff.conversations import purge_command

    settings = get_settings()
    if args.days is not None and args.days < 1:
        print("--days must be at least 1.", file=sys.stderr)
        return 2
    # The audit lines go to DATA_DIR/log/purge.log (JSON, hashed ids only) and to the console.
    with runtime.private_file(settings.log_dir / "purge.log").open("a", encoding="utf-8") as log:
        def say(line: str) -> None:
            """The console line, and the same as a JSON audit line (hashed ids and counts only)."""
            print(line)
            log.write(json.dumps({"timestamp": datetime.now(timezone.utc).isoformat(), "process": "purge",
                                  "event": f"purge: {line}"}) + "\n")
            log.flush()

        configure_logging("purge", level="WARNING", stream=sys.stderr)  # problems only: say() is the audit
        return purge_command(settings, dry_run=args.dry_run, days=args.days, say=say)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the knowledge base and spaCy pipeline (when their sources changed)")
    build.set_defaults(run=cmd_build)
    build.add_argument("--force", action="store_true", help="build even when nothing changed")
    train = sub.add_parser("train", help="train the Rasa model when its inputs changed")
    train.set_defaults(run=cmd_train)
    train.add_argument("--force", action="store_true", help="retrain even if the model is current")
    train.add_argument("--quiet", action="store_true", help="do not print the model's path")
    serve = sub.add_parser("serve", help="action server + Rasa server until Ctrl-C")
    serve.set_defaults(run=cmd_serve)
    serve.add_argument("--cluster", action="store_true",
                       help="PostgreSQL, Redis, haproxy and several Rasa instances (bot/ops/cluster.py)")
    sub.add_parser("shell", help="action server + rasa shell").set_defaults(run=lambda a: cmd_serve(a, shell=True))
    explain = sub.add_parser("explain", help="explain the assistant's answers to questions")
    explain.set_defaults(run=cmd_explain)
    explain.add_argument("question", nargs="*", help="questions (interactive when none given)")
    evaluate = sub.add_parser("evaluate", help="accuracy and safety report")
    evaluate.set_defaults(run=cmd_evaluate)
    evaluate.add_argument("--folds", type=int, default=3, help="cross-validation folds")
    evaluate.add_argument("--no-cv", action="store_true", help="skip rasa test nlu cross-validation")
    evaluate.add_argument("--dev-only", action="store_true",
                          help="score only the dev sets (error analysis; the locked sets are not run)")
    evaluate.add_argument("--replies", metavar="FILE",
                          help="also write every patient message and reply to FILE, for a reading review"
                               " (keep it outside the repository)")
    benchmark = sub.add_parser("benchmark", help="speed and load benchmark")
    benchmark.set_defaults(run=cmd_benchmark)
    benchmark.add_argument("--messages", type=int, default=1000, help="single-user messages after warm-up")
    benchmark.add_argument("--seconds", type=float, default=30, help="duration of each load level")
    benchmark.add_argument("--no-training", action="store_true", help="skip the cold training measurement")
    benchmark.add_argument("--no-cluster", action="store_true", help="skip the 1-vs-2-instance cluster comparison")
    staff = sub.add_parser("create-staff", help="create a staff account for the dashboard")
    staff.set_defaults(run=cmd_create_staff)
    staff.add_argument("username")
    staff.add_argument("--reset", action="store_true", help="set a new password for an existing account")
    staff.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    export = sub.add_parser("export-clinic", help="write the approved clinic answers to knowledge/clinic/*.yml")
    export.set_defaults(run=cmd_export_clinic)
    export.add_argument("--dir", help="another folder to write them to")
    purge = sub.add_parser("purge", help="delete conversations and records older than RETENTION_DAYS")
    purge.set_defaults(run=cmd_purge)
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--days", type=int, help="keep this many days instead of RETENTION_DAYS")
    sub.add_parser("setup-database", help="cluster profile: conversations' schema and knowledge base in DATABASE_URL"
                   ).set_defaults(run=cmd_setup_database)
    haproxy = sub.add_parser("haproxy-config", help="print the balancer's haproxy.cfg (as ./run.sh cluster writes it)")
    haproxy.set_defaults(run=cmd_haproxy_config)
    haproxy.add_argument("--instance", action="append", required=True, help="host:port of a Rasa instance (repeat)")
    haproxy.add_argument("--port", type=int, default=8000, help="the balancer's port")
    haproxy.add_argument("--interface", default="127.0.0.1", help="the address the balancer listens on")
    haproxy.add_argument("--rest-port", type=int,
                         help="the loopback-only port for the REST channel (default: --port + 1)")
    haproxy.add_argument("--stats-socket", help="owner-only stats socket (which instances are up)")
    haproxy.add_argument("--stats-group", help="a group that may read the stats socket too (the assistant's)")
    haproxy.add_argument("--user", help="the system user haproxy drops to")
    webhook = sub.add_parser("telegram-webhook", help="register the Telegram webhook")
    webhook.set_defaults(run=cmd_telegram_webhook)
    webhook.add_argument("url", help="public https URL of /webhooks/telegram/webhook")
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
