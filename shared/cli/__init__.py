"""`k8s-monitor`: the command line, one module per command, imported only when that command runs.

Each command module has `add_arguments(parser)` and `run(args) -> int` (the exit code). Errors an
operator can act on are printed as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING

from shared import __version__

if TYPE_CHECKING:
    from shared.core.settings import Settings

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("shared.cli.demo", "run the whole pipeline against a built-in simulated cluster"),
    "collect": ("shared.cli.collect", "run one collection against the configured cluster"),
    "serve": ("shared.cli.serve", "serve every function in one process, with collections and backups on a schedule"),
    "report": ("shared.cli.report", "requests vs usage, idle resources, risks and recommendations"),
    "alerts": ("shared.cli.alerts", "list firing and recently resolved alerts"),
    "notify-test": ("shared.cli.notify_test", "send a test message to each configured notification channel"),
    "health": ("shared.cli.health", "check the database, Kubernetes, Prometheus and collection freshness"),
    "diagnose": ("shared.cli.diagnose", "check everything, print a verdict and write a diagnostics archive"),
    "backup": ("shared.cli.backup", "back the database up now (online, verified, compressed), then prune old backups"),
    "backups": ("shared.cli.backups", "list the backups in BACKUP_DIR with age, size and checksum state"),
    "restore": ("shared.cli.restore", "verify a backup and swap it in as the database"),
    "migrate": ("shared.cli.migrate", "upgrade the database schema now (a copy is kept first)"),
    "retention": ("shared.cli.retention", "roll up old samples and delete data past its retention now"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for every command; only the command named by `argv[0]` has its module imported for its options."""
    parser = argparse.ArgumentParser(
        prog="k8s-monitor", description="Kubernetes resource monitor: requests vs real usage, over weeks."
    )
    parser.add_argument("--version", action="version", version=f"k8s-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module=module_name)
        if name in argv[:1]:  # only the chosen command's module is imported
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return the exit code: 2 for bad settings, 130 when interrupted, 1 for any other error.

    Errors are printed as one line on stderr, secrets masked, never as a traceback."""
    from shared.core.logs import redact
    from shared.core.settings import ConfigError

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(args.module)
    try:
        return int(module.run(args) or 0)
    except ConfigError as exc:
        print(f"k8s-monitor {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"k8s-monitor {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `k8s-monitor report | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 — one clear line, never a traceback
        from shared.store.connection import StoreError
        kind = "" if isinstance(exc, StoreError) else f"{type(exc).__name__}: "
        print(redact(f"k8s-monitor {args.command}: error: {kind}{exc}"), file=sys.stderr)
        return 1


def cli_settings(quiet: bool = False, server: bool = False, **overrides: object) -> Settings:
    """Settings for a command run by hand: local paths (./data) unless the environment says otherwise.

    Logs go to stderr (stdout is the command's output) as text unless LOG_FORMAT says json; `quiet` keeps
    INFO lines out of a command whose own output is the point (the demo), unless LOG_LEVEL asks for them.
    A `server` (serve) logs as the functions do: LOG_FORMAT (json by default) on stdout.
    """
    import os
    from pathlib import Path

    from shared.core.logs import configure_logging, register_secrets
    from shared.core.settings import load_settings

    local: dict[str, object] = {}
    if "DATABASE_PATH" not in os.environ:
        local["database_path"] = Path("data/k8s_metrics.db")
    if "BACKUP_DIR" not in os.environ:
        local["backup_dir"] = Path("data/backups")
    if quiet and "LOG_LEVEL" not in os.environ:
        local["log_level"] = "WARNING"
    settings = load_settings(**{**local, **overrides})
    if server:
        configure_logging(settings.log_level, settings.log_format, stream=sys.stdout, cluster=settings.cluster_name)
    else:
        configure_logging(settings.log_level, os.environ.get("LOG_FORMAT", "text"), stream=sys.stderr,
                          cluster=settings.cluster_name)
    register_secrets(settings.secret_values())
    return settings
