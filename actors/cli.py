"""The ``run.py`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from realtime import config as config_module


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check-config", help="validate and print the effective config")
    check.add_argument("--config", default="config.toml")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        try:
            loaded = config_module.load(args.config)
        except config_module.ConfigError as exc:
            print(f"config error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(config_module.masked(loaded), indent=2))
        return 0
    parser.print_help()
    return 0
