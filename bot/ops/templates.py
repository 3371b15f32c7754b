"""The web pages' one templating: Jinja2 with HTML autoescaping, for the staff dashboard
(web/staff/) and the demo clinic page (web/demo/)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=None)
def _environment(root: Path) -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(str(root)), autoescape=select_autoescape(["html"]))


def render(root: Path, name: str, **values: Any) -> str:
    """Template ``name`` of the folder ``root``, every value escaped unless marked with ``| safe``."""
    return _environment(root).get_template(name).render(**values)


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
