"""Rasa's command line for the project: `python -m bot.rasa.main run ...` (and `shell`).

Rasa 3.6.21 with the project's JSON logs and the few patches that have no extension point in
Rasa 3.6 (bot/rasa/patches.py, which says why each one remains and refuses another Rasa
version). Everything else is configured where Rasa looks for it: the NLU graph components in
config.yml (the questions of a message, a "forget me" confirmation in context, the crisis
layer), the tracker store, lock store and NLG in endpoints.yml (the staff side's work at each
save, bot/staff/tracker_store.py), and the channels in credentials.yml (the REST channel also
starts the retention purge's schedule).
"""
from __future__ import annotations


def configure_logs(command: str) -> None:
    """The project's JSON logs without patient text (bot/ops/logs.py), instead of Rasa's own set-up.
    The staff shell writes them to DATA_DIR/log/shell.log, away from the conversation."""
    from bot.ops.logs import configure_logging

    if command == "shell":
        from bot.ops import runtime
        from bot.ops.settings import get_settings

        settings = get_settings()
        runtime.private_dir(settings.log_dir)
        configure_logging("rasa-shell", stream=(settings.log_dir / "shell.log").open("a", encoding="utf-8"))
    else:
        configure_logging(f"rasa-{command}")


def main() -> None:
    import sys

    command = sys.argv[1] if len(sys.argv) > 1 else "rasa"
    configure_logs(command)  # before Rasa's imports, so their warnings are logged (or dropped) as JSON too
    import rasa.__main__ as rasa_cli

    from bot.rasa import patches as rasa_patches

    rasa_patches.apply()
    rasa_patches.own_logging(lambda: configure_logs(command))
    rasa_cli.main()


if __name__ == "__main__":
    main()
