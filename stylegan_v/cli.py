"""The one wrapper around every Hydra entry point: its own ``--help`` page, and config errors as one line.

``@entry_point("train")`` over ``def main(cfg)`` replaces ``@hydra.main``. Before Hydra runs, the wrapper

- selects the entry point's help page, ``conf/hydra/help/<name>.yaml``, whose group lists come from ``conf/``
  through the ``help_groups`` resolver (user-facing options only: no ``base_*`` schemas, ``*_schema``, ``_base``);
- composes the config once and checks it (types, unknown keys, ranges) for a plain run and for ``--cfg``, so
  a bad value is one line, ``error: <key> …``, and exit status 2 (a usage error, as for argparse), before
  anything is prepared or queued. ``--verbose`` (removed before Hydra parses the command line) or
  ``HYDRA_FULL_ERROR=1`` keeps the traceback.

A multirun (``-m``) is checked point by point: the sweep is expanded as Hydra's basic sweeper will launch it
(a sweep file's ``hydra.sweeper.params`` and comma lists on the command line) and every point's config is
composed and checked, so one bad point refuses the whole sweep (``error: point 3/4 (key=value): …``) before
anything is queued or an MLflow parent run opened. A config from elsewhere (``--config-dir``, DVC's
``params.yaml``) skips the check and is checked by the task itself.

Once the task runs, a failure the user can fix (a full disk, a run directory in use, sbatch refusing the
job, a damaged MLflow store, see :mod:`stylegan_v.errors`) is one line too, ``error: <cause>: <what to do>``,
exit status 1; anything else keeps Hydra's usual report.

This module and every schema it composes import neither torch nor MLflow: ``--help`` and a refused value
answer in about the interpreter's start-up time. Entry points keep their heavy imports inside ``run``.
"""

from __future__ import annotations

import argparse
import functools
import os
import string
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.object_type import ObjectType
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from stylegan_v.errors import report_errors

T = TypeVar("T")
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
USAGE_ERROR = 2  # exit status of a refused command line (argparse's)
VERBOSE_FLAG = "--verbose"
PLAN_FLAG = "--plan"  # print what a launch would request and cost, launch nothing (entry points with a plan)
HELP_WIDTH = 110  # characters per line of the option lists in --help
# What composing and typing a config raises for a bad command line: schema range checks (ConfigError is a
# ValueError; some schemas raise ValueError itself), Hydra's composition errors, OmegaConf's type/key errors.
CONFIG_ERRORS = (ValueError, HydraException, OmegaConfBaseException)
# Hydra's own trailers on a message: not about the user's value.
_NOISE_PREFIXES = ("full_key:", "object_type=", "reference_type=", "Config search path", "provider=")


def type_groups(cfg: DictConfig) -> Any:
    """The default check: every group typed by its schema, so each runs its range checks."""
    return OmegaConf.to_object(cfg)


def entry_point(name: str, config_name: str = "config", check: Callable[[DictConfig], Any] = type_groups,
                before_launch: Callable[[list[tuple[str, Any]], bool], None] | None = None,
                ) -> Callable[[TaskFunction], Callable[[], None]]:
    """Make ``main(cfg)`` the command ``python -m stylegan_v.<name>`` (see the module docstring).

    ``check(cfg)`` is what the task would refuse the config with, run on the composed config of a plain run
    or ``--cfg``; entry points whose rules span groups pass :func:`stylegan_v.configs.validate`.
    ``before_launch(points, plan)``, when given, sees every point's ``(label, check result)`` once all are
    checked and before Hydra runs anything; ``plan`` is true when ``--plan`` was on the command line (taken
    out before Hydra parses it): the hook then prints the plan and the command ends there, nothing launched.
    """
    def wrap(task: TaskFunction) -> Callable[[], None]:
        from stylegan_v.launch.sweep import register_resolvers

        register_resolvers()  # at import, so that a sweep point unpickled in its Slurm job has them too
        task = report_errors(task, full_error)  # a failure the user can fix: one line, see stylegan_v.errors
        hydra_main = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(task)

        @functools.wraps(task)
        def main() -> None:
            plan = before_launch is not None and PLAN_FLAG in sys.argv[1:]
            if plan:
                sys.argv = [a for a in sys.argv if a != PLAN_FLAG]
            sys.argv = command_line(sys.argv, name)
            OmegaConf.register_new_resolver("help_groups", help_groups, replace=True)
            parsed = _hydra_args(sys.argv[1:])
            if parsed.help:
                print_help(parsed.config_name or config_name, parsed.overrides, parsed.resolve)
                return
            points = check_command_line(sys.argv[1:], config_name, check)
            if plan and points is None:
                print(f"error: {PLAN_FLAG} needs a config composed from conf/ (no --config-dir, --info, ...)",
                      file=sys.stderr)
                raise SystemExit(USAGE_ERROR)
            if before_launch is not None and points is not None and not (parsed.cfg or parsed.info):
                before_launch(points, plan)
            if plan:
                return
            hydra_main()
        return main
    return wrap


def command_line(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` for Hydra: ``--verbose`` taken out (it sets HYDRA_FULL_ERROR=1, for Hydra's reports too) and
    this entry point's help page selected unless the user chose one."""
    args = list(argv)
    if VERBOSE_FLAG in args:
        args = [a for a in args if a != VERBOSE_FLAG]
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if any(a.startswith(("hydra/help=", "+hydra/help=", "++hydra/help=")) for a in args):
        return args
    # argparse takes the overrides as one run of positional arguments: join the user's run, or start it
    overrides = _hydra_args(args[1:]).overrides
    at = args.index(overrides[0], 1) if overrides else 1
    return [*args[:at], f"hydra/help={name}", *args[at:]]


def _hydra_args(args: Sequence[str]) -> argparse.Namespace:
    from hydra._internal.utils import get_args_parser  # the parser @hydra.main uses; no public equivalent

    return get_args_parser().parse_known_args(list(args))[0]


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"  # the test Hydra itself uses


def print_help(config_name: str, overrides: Sequence[str], resolve: bool = False) -> None:
    """The help page the overrides select (``hydra/help=<name>``, see :func:`command_line`), rendered as Hydra's
    ``--help`` would, without the two listings of every config group Hydra computes for its own template's
    ``$APP_CONFIG_GROUPS`` and ``$HYDRA_CONFIG_GROUPS`` whether the page uses them or not (seconds of CPU).
    ``$CONFIG`` is the composed config (the keys of a tool without groups)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = _refuse_on_error(lambda: compose(config_name, overrides=list(overrides), return_hydra_config=True))
        HydraConfig.instance().set_config(cfg)  # the current choices, starred by help_groups
        template = str(cfg.hydra.help.template)  # resolves ${hydra.help.header} and ${help_groups:...}
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        config = OmegaConf.to_yaml(cfg, resolve=resolve) if "$CONFIG" in template else ""
    print(string.Template(template).substitute(CONFIG=config))


def check_command_line(args: Sequence[str], config_name: str,
                       check: Callable[[DictConfig], Any]) -> list[tuple[str, Any]] | None:
    """Compose and ``check`` the config a plain run or ``--cfg`` would use, or every point of a multirun; a
    config error exits here. Returns ``(label, check result)`` per point (one, labelled "", for a plain run),
    or None when the config is not composed from ``conf/``."""
    parsed = _hydra_args(args)
    if (parsed.help or parsed.hydra_help or parsed.info or parsed.shell_completion
            or parsed.config_dir or parsed.config_path or parsed.experimental_rerun):
        return None  # not a config composed from conf/: Hydra (or the task) checks it
    name = parsed.config_name or config_name
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        if not parsed.multirun:
            return [("", _refuse_on_error(lambda: check(compose(name, overrides=parsed.overrides))))]
        points = _refuse_on_error(lambda: sweep_points(name, parsed.overrides))
        checked = []
        for num, (label, overrides) in enumerate(points):
            where = f"point {num + 1}/{len(points)}" + (f" ({label})" if label else "")
            checked.append((label, _refuse_on_error(lambda: check_point(name, overrides, check), where)))
        return checked


def _refuse_on_error(step: Callable[[], T], where: str = "") -> T:
    """``step()``, or a config error as one line (prefixed by ``where``) and exit status 2."""
    try:
        return step()
    except CONFIG_ERRORS as err:
        if full_error():
            raise
        print(f"error: {where + ': ' if where else ''}{one_line(err)}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None


def sweep_points(config_name: str, overrides: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(label, overrides) of every point of a multirun, in launch order: the sweep config loaded as Hydra
    loads it for ``-m``, expanded by the basic sweeper's own code (:func:`stylegan_v.launch.sweep.expand_points`)."""
    from stylegan_v.launch.sweep import expand_points, point_label, swept_keys

    loader = GlobalHydra.instance().config_loader()
    sweep_config = loader.load_configuration(config_name, list(overrides), run_mode=RunMode.MULTIRUN)
    points = expand_points(sweep_config)
    keys = swept_keys(sweep_config, points)
    return [(point_label(point, keys), point) for point in points]


def check_point(config_name: str, overrides: list[str], check: Callable[[DictConfig], Any]) -> Any:
    """``check`` one point's config as its job will compose it, Hydra's runtime config in place (a sweep's
    ``sweep.point`` reads it) and then removed, as Hydra hands the config to the task."""
    cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return check(cfg)


def one_line(err: BaseException) -> str:
    """A config error's message on one line, naming the key where the error knows it."""
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        valid = ", ".join(o for o in sorted(err.options) if user_facing(o))
        return f"{group}={option}: no such option; valid: {valid}"
    if isinstance(err, MissingMandatoryValue) and getattr(err, "full_key", None):
        return f"{err.full_key} must be set: {err.full_key}=..."
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException):  # Hydra's wrapper: the value error is the cause
        key = getattr(cause, "full_key", None)
        text = "; ".join(_message_lines(cause) + _message_lines(err)[1:])  # Hydra's hint follows its first line
    else:
        key = getattr(err, "full_key", None)
        text = "; ".join(_message_lines(err))
    return f"{key}: {text}" if key and not text.startswith(key) else text


def _message_lines(err: BaseException) -> list[str]:
    lines = [line.strip() for line in str(err).splitlines()]
    return [line for line in lines if line and not line.startswith(_NOISE_PREFIXES)]


def user_facing(option: str) -> bool:
    """Options a user picks; schemas (``base_*``, ``*_schema``) and shared fragments (``_base``) are not."""
    return not (option.startswith(("base_", "_")) or option.endswith("_schema"))


def help_groups(*groups: str) -> str:
    """``${help_groups:a,b}`` in a help page: one line per group (and its subgroups) with its user-facing
    options, the current choice starred. Read from Hydra's config repository, so it never goes stale (the
    repository itself: the loader's ``get_group_options`` deep-copies it on every call)."""
    repository = GlobalHydra.instance().config_loader().repository  # type: ignore[attr-defined]
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    rows: list[tuple[str, str]] = []
    pending = list(groups)
    while pending:
        group = pending.pop(0)
        options = [o for o in repository.get_group_options(group, ObjectType.CONFIG) if user_facing(o)]
        if options:
            rows.append((group, ", ".join(f"{o}*" if choices.get(group) == o else o for o in sorted(options))))
        pending[:0] = [f"{group}/{sub}" for sub in sorted(repository.get_group_options(group, ObjectType.GROUP))]
    width = max((len(group) for group, _ in rows), default=0) + 4  # two spaces either side of the name
    return "\n".join(textwrap.fill(options, HELP_WIDTH, initial_indent=f"  {group:<{width - 2}}",
                                   subsequent_indent=" " * width) for group, options in rows)
