import sys

from bot.ops.cli import main
from bot.knowledge.articles import ArticlesMissing
from bot.ops.settings import SettingsError

try:
    raise SystemExit(main())
except SettingsError as error:  # a wrong environment variable: say which, without a traceback
    print(f"Cannot start: {error}", file=sys.stderr)
    raise SystemExit(2) from None
except ArticlesMissing as error:  # a checkout without the articles beside it
    print(f"Cannot build the knowledge base: {error}", file=sys.stderr)
    raise SystemExit(2) from None
