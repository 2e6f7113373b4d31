"""Entry point of the `kpisync` command: every error a user can cause ends as one line."""

from __future__ import annotations

import os
import sys

from kpisync.core.errors import KpisyncError

from . import connectors_cmd, pull, status  # noqa: F401  (commands register on import)
from . import demo  # noqa: F401
from . import sync_cmd  # noqa: F401
from . import schedule_cmd  # noqa: F401
from . import init_cmd  # noqa: F401
from . import auth_cmd  # noqa: F401
from . import config_cmd  # noqa: F401
from . import backup_cmd  # noqa: F401
from . import helprace_cmd  # noqa: F401
from . import import_cmd  # noqa: F401  (after helprace_cmd: joins its `import` group)
from . import kpi, dashboard  # noqa: F401
from . import report_cmd  # noqa: F401
from . import new_connector_cmd  # noqa: F401
from .app import app
from .common import scrub


def run() -> None:
    """Console-script entry: run the app, turning errors into one line and an exit code."""
    try:
        # Without standalone mode click *returns* a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except KpisyncError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 — the last line of defence against tracebacks
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("KPISYNC_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {scrub(str(exc))} (KPISYNC_DEBUG=1 shows the traceback)", file=sys.stderr)
        sys.exit(1)
