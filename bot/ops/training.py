"""Train the Rasa model only when its inputs changed.

The model's name carries a fingerprint of everything training reads (config,
domain, NLU/rules/stories, the custom components and the Rasa version), so an
unchanged project reuses its model and a changed one trains exactly once.
Knowledge-base wording and route synonyms are *not* inputs: changing an answer
needs a knowledge-base rebuild, never a retrain.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

from bot.ops.settings import PROJECT_ROOT, get_settings

MODEL_PREFIX = "assistant-"
TRAINING_INPUTS = ("config.yml", "domain.yml", "data", "bot/rasa/components.py", "bot/crisis", "knowledge/lexicon.yml")


def _files(root: Path, inputs: Iterable[str]) -> List[Path]:
    found: List[Path] = []
    for name in inputs:
        path = root / name
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts))
        else:
            found.append(path)
    return found


def content_fingerprint(inputs: Iterable[str], *, root: Optional[Path] = None) -> str:
    """A digest of the files named by ``inputs`` (files or folders under ``root``). Custom NLU
    components that read files of their own return it from ``fingerprint_addon``: Rasa's
    training cache keys a component on its config and Rasa's training data only, so without it
    an edited crisis example or lexicon phrase would silently reuse the old trained component."""
    root = root or PROJECT_ROOT
    digest = hashlib.sha256()
    for path in _files(root, inputs):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(*, root: Path = PROJECT_ROOT) -> str:
    import rasa

    digest = hashlib.sha256(f"rasa={rasa.__version__}".encode())
    for path in _files(root, TRAINING_INPUTS):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(*, root: Path = PROJECT_ROOT, models_dir: Optional[Path] = None) -> Path:
    directory = models_dir or get_settings().models_dir
    return directory / f"{MODEL_PREFIX}{fingerprint(root=root)}.tar.gz"


def ensure_model(*, root: Path = PROJECT_ROOT, models_dir: Optional[Path] = None, force: bool = False) -> Path:
    """Return the model for the current inputs, training it first if it does not exist.

    Training's own output (TensorFlow's progress bars and notices) goes to DATA_DIR/log/training.log;
    the console gets one line before and one after.
    """
    from bot.ops import runtime

    target = model_path(root=root, models_dir=models_dir)
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    log = runtime.private_dir(settings.log_dir) / "training.log"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore"}
    print(f"Training the model (config, domain or data changed; about a minute). Details: {log}", flush=True)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as output:
        result = subprocess.run(
            [
                sys.executable, "-m", "rasa", "train",
                "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
                "--out", str(target.parent),
                "--fixed-model-name", target.name[: -len(".tar.gz")],
            ],
            cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise RuntimeError(f"training failed (exit {result.returncode}); see {log}")
    print(f"Model trained in {time.monotonic() - started:.0f} s: {target.name}", flush=True)
    for old in target.parent.glob(f"{MODEL_PREFIX}*.tar.gz"):
        if old != target:
            old.unlink()  # keep only the model that matches the checkout
    return target
