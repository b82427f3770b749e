"""`python -m ml pull NAME [--dir DIR]`: download a registry model from the Hugging Face hub (ml/pull.py);
`python -m ml list`: the registry; `python -m ml quantize SOURCE.gguf TARGET.gguf [--type Q8_0]`: requantize
a GGUF for fast CPU kernels (see ml/quantize.py for the measured types)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.pull import PullError, pull
from ml.quantize import FTYPES, file_ftype, requantize
from ml.registry import REGISTRY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml")
    commands = parser.add_subparsers(dest="command", required=True)
    puller = commands.add_parser("pull", help="download a registry model from the Hugging Face hub")
    puller.add_argument("name")
    puller.add_argument("--dir", type=Path, default=None,
                      help="where models live (default: $CONVASSIST_DATA_DIR/models, as the worker looks)")
    commands.add_parser("list", help="the models this build knows")
    quantize = commands.add_parser("quantize", help="requantize a GGUF model file")
    quantize.add_argument("source", type=Path)
    quantize.add_argument("target", type=Path)
    quantize.add_argument("--type", default="Q8_0", choices=sorted(FTYPES))
    args = parser.parse_args(argv)
    if args.command == "list":
        for spec in REGISTRY.values():
            print(f"{spec.model_id:24} {spec.plain_name:28} serve ≈{spec.serve_gb:>4} GB  train ≈{spec.train_gb:>5} GB  "
                  f"{spec.source}")
        return 0
    if args.command == "pull":
        import os

        data_dir = os.environ.get("CONVASSIST_DATA_DIR") or Path(__file__).resolve().parents[1] / "data"
        models_dir = args.dir or Path(data_dir) / "models"  # where the worker looks (ml.registry.resolve_model)
        try:
            pulled = pull(args.name, models_dir)
        except PullError as exc:
            print(f"pull failed: {exc}", file=sys.stderr)
            return 1
        print(f"{pulled.path} ({pulled.size / 1e6:.0f} MB, sha256 {pulled.sha256[:16]}…) — serve it with "
              f"ML_SERVICE_MODEL_ID={args.name}")
        return 0
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    print(f"{args.source.name}: {file_ftype(args.source)} → {args.type}")
    requantize(args.source, args.target, args.type)
    print(f"wrote {args.target} ({args.target.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
