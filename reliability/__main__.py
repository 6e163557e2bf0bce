"""``python -m reliability run [--long] [--write] [--only NAME ...]`` and
``python -m reliability section NAME [--long] --out FILE`` (one part, used by ``run``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reliability.run import report, run, section


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run", help="run the battery; --long is the long form (writes RELIABILITY.md)"
    )
    r.add_argument("--long", action="store_true")
    r.add_argument("--write", action="store_true", help="write RELIABILITY.md (implied by --long)")
    r.add_argument(
        "--only",
        nargs="*",
        help="sections: crash-sqlite crash-postgresql db-faults fuzz-fhir fuzz-openapi load",
    )
    rep = sub.add_parser("report", help="re-render RELIABILITY.md from build/reliability/*.json")
    rep.add_argument("--long", action="store_true")
    s = sub.add_parser("section")
    s.add_argument("name")
    s.add_argument("--long", action="store_true")
    s.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "run":
        return run(args.long, args.write or args.long, args.only)
    if args.command == "report":
        return report(long=args.long, write=True)
    section(args.name, args.long, args.out)
    return 0


raise SystemExit(main())
