"""The ``elasticnas`` command: thin subcommands over the public API.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit status). ``subparsers`` is a
:class:`~elasticnas.cli._args.LazySubParsers`: a subcommand's arguments are
added only when it is the one parsed, and the modules import PyTorch, Optuna
and the registries inside functions, so ``elasticnas --help`` stays fast.

``--plugin MODULE`` (repeatable, before the subcommand) imports a user's module first, so
that the super-networks, searchers and metrics it registers are known to every
subcommand and listed by its ``--help``; installed packages register theirs through
entry points (:data:`elasticnas.registry.ENTRY_POINT_GROUPS`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from elasticnas.cli import _export, _hf, _lut, _measure, _study_commands, _train
from elasticnas.cli._args import LazySubParsers
from elasticnas.errors import ElasticNASError

SUBCOMMAND_MODULES = [_study_commands, _export, _measure, _lut, _train, _hf]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elasticnas",
        description=(
            "Find Pareto-optimal sub-networks of elastic super-networks: search, measure, "
            "report and export. Run 'elasticnas demo' for a first tour."
        ),
    )
    from elasticnas import __version__

    parser.add_argument("--version", action="version", version=f"elasticnas {__version__}")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): the super-networks, searchers and metrics it registers "
        "become available to the subcommand",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, action=LazySubParsers)
    for module in SUBCOMMAND_MODULES:
        module.register(subparsers)
    return parser


QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}

KEPT_ON_INTERRUPT = {"search": "finished evaluations are saved", "demo": "finished evaluations are saved"}
"""What an interrupted command keeps, unless it says so itself (``KeyboardInterrupt(message)``)."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it cleans up as after Ctrl-C."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    from elasticnas._interrupts import interrupt  # raised once a storage call under way returns

    interrupt(_Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it again at exit finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout replaced (tests) or already closed
        pass


def plugin_modules(argv: Sequence[str]) -> list[str]:
    """The modules named by ``--plugin MODULE`` / ``--plugin=MODULE`` (or a prefix) before the subcommand."""
    modules: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        option, eq, value = token.partition("=")
        if len(option) > 2 and "--plugin".startswith(option):
            modules.append(value if eq else next(tokens, ""))
        elif not token.startswith("-"):
            break
    return [m for m in modules if m]  # a missing value is argparse's to report


def import_plugins(modules: Sequence[str]) -> str | None:
    """Import the plugin ``modules`` (from the working directory or the installed packages); the
    one-line error of the first that fails, else None."""
    if modules and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a user's module may fail in any way
            return f"elasticnas: error: plugin {module!r} failed to import: {type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hugging Face's loading and saving bars and advice stay quiet: our progress bars and one-line
    errors say enough. Environment defaults for a library imported later, switches (restored after)
    for one already imported."""
    for variable, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(variable, value)
    hf_logging = getattr(sys.modules.get("transformers"), "logging", None)
    if hf_logging is None:
        yield
        return
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the exit status follows what happened.

    0: done. 2: bad input or a failure of the environment (one line on stderr). 130 / 143:
    interrupted by Ctrl-C / SIGTERM (one line saying what was kept). 141: stdout was closed
    early (``elasticnas pareto | head``), quietly.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    error = import_plugins(plugin_modules(argv))
    if error is not None:
        print(error.splitlines()[0], file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    import optuna

    from elasticnas._interrupts import clear_interrupts
    from elasticnas.storages import storage_errors

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress bar and summary say enough
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if on_main_thread else {}
    try:
        with storage_errors(getattr(args, "storage", None)), _quiet_libraries():
            status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except ElasticNASError as exc:
        print(f"elasticnas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        kept = str(exc) or KEPT_ON_INTERRUPT.get(args.command, "nothing was written")
        print(f"elasticnas {args.command}: {'terminated' if terminated else 'interrupted'}; {kept}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    finally:
        clear_interrupts()
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
