"""The project's action server: rasa-sdk's app, made safe to run next to patients.

rasa-sdk answers an exception with HTTP 500 and the whole request body - the
patient's tracker, every message they typed - in the response and the log. Here
the server binds to loopback only and answers errors with a bare 500.

Rasa sends the whole conversation with every action call, so this server (loopback only, called
by Rasa alone) takes bodies far larger than the patient-facing limit (REQUEST_MAX_BYTES): a
long conversation must never stop being answered.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ACTION_REQUEST_MAX_BYTES = 64 * 1024 * 1024  # a conversation of thousands of turns


def build_app(actions_package: str = "actions"):
    from rasa_sdk.endpoint import create_app
    from sanic import response
    from sanic.request import Request

    app = create_app(actions_package, cors_origins=None)
    app.config.REQUEST_MAX_SIZE = ACTION_REQUEST_MAX_BYTES

    async def private_error(request: "Request", exception: Exception):
        # Log the kind of failure only: never the tracker, which holds patients' messages.
        logger.error("Action server error %s on %s", type(exception).__name__, request.path)
        return response.json({"error": "internal error"}, status=500)

    app.error_handler.add(Exception, private_error)
    return app


def main() -> None:
    from bot.ops.logs import configure_logging
    from bot.ops.settings import get_settings

    configure_logging("actions")  # before rasa-sdk's imports, so their warnings are handled too
    settings = get_settings()
    host, port = settings.action_server_host, settings.action_server_port
    app = build_app()
    from bot.answers.assistant import get_assistant

    get_assistant().warm()  # the knowledge base, search index, fact ranker and spaCy pipeline, before the first patient
    configure_logging("actions")
    logger.info("Action server listening on http://%s:%d", host, port)
    app.run(host=host, port=port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
