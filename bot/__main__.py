import sys

from bot.cli import main
from bot.settings import SettingsError

try:
    raise SystemExit(main())
except SettingsError as error:  # a wrong environment variable: say which, without a traceback
    print(f"Cannot start: {error}", file=sys.stderr)
    raise SystemExit(2) from None
