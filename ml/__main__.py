"""`python -m ml quantize SOURCE.gguf TARGET.gguf [--type Q8_0]`: requantize a GGUF for fast CPU kernels
(see ml/quantize.py for the measured types)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.quantize import FTYPES, file_ftype, requantize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml")
    commands = parser.add_subparsers(dest="command", required=True)
    quantize = commands.add_parser("quantize", help="requantize a GGUF model file")
    quantize.add_argument("source", type=Path)
    quantize.add_argument("target", type=Path)
    quantize.add_argument("--type", default="Q8_0", choices=sorted(FTYPES))
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    print(f"{args.source.name}: {file_ftype(args.source)} → {args.type}")
    requantize(args.source, args.target, args.type)
    print(f"wrote {args.target} ({args.target.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
