"""The clinic's side of the assistant: records of knowledge turns (not transcripts), feedback,
privacy (retention purge, "forget me") and the staff dashboard.

    records.py        the records database: schema and the ``RecordStore`` (keyword-only access)
    scrub.py          phone numbers, e-mail addresses and names out of a question before it is kept
    conversations.py  deleting a conversation (tracker store + records) inside its lock; purge
    clusters.py       unanswered questions grouped by meaning (or, without the model, by shared words)
    embeddings.py     all-MiniLM-L6-v2 sentence embeddings (tokenizers, safetensors, numpy)
    accounts.py       staff accounts: argon2 hashes, lock-out, sessions, CSRF tokens
    dashboard.py      the dashboard's routes (served by bot/ops/web.py under /staff/)
"""
