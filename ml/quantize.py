"""The fastest CPU kernel for a model: requantize its GGUF once, cached on disk.

llama.cpp's CPU path has fast kernels for some quantization types and not others. Measured on this
project's 2-core x86-64 machine with SmolLM2-135M (llama-cpp-python 0.3.36, prompt evaluation):

    type    prompt tok/s   mean loss on real replies   greedy replies identical to the shipped file
    Q4_1    ≈212–290       4.9038 nats/token           (the shipped file: misses the fast path)
    Q8_0    ≈306–483       4.9041 (+0.01%)             10 of 12 (the kernels quantize activations
                                                        differently: a 135M model turns at near-ties)
    Q4_0    ≈361–508       5.3054 (+8%)                2 of 12

(bench/generation.py prints the rates and losses of each run; tests/ml/test_quantize.py the identical
replies.) Q8_0 keeps the model's quality and reads prompts ≈1.4× faster; Q4_0 is faster still but
measurably worse, so it is only a setting (ML_SERVICE_REQUANTIZE=Q4_0).

The embedded Q4_1 file is converted to Q8_0 at the worker's first start (≈1 s, ≈145 MB), keyed by
the source file's identity so that a new file converts again; a model of another slow type is only
warned about (converting a 7B model is the operator's call: `python -m ml quantize`).
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

from ml.registry import ResolvedModel

log = logging.getLogger(__name__)

# llama.cpp's file types (enum llama_ftype) by name, and the ones measured slow on CPU
FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q4_K_M": 15, "Q5_K_M": 17,
          "Q6_K": 18}
SLOW_ON_CPU = {"Q4_1"}
FAST_ON_CPU = {"Q4_0", "Q8_0"}
FAST_TYPE = "Q8_0"


def ftype_name(code: int) -> str:
    return next((name for name, value in FTYPES.items() if value == code), f"type {code}")


def file_ftype(path: Path) -> str:
    """A GGUF's quantization type, from its header (general.file_type), without loading the weights."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.file_type")
    return ftype_name(int(field.parts[field.data[0]][0])) if field is not None else "unknown"


def requantize(source: Path, target: Path, kind: str = FAST_TYPE, threads: int = 0) -> Path:
    """Write `source` requantized as `kind` to `target` (atomically: two workers may race)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.allow_requantize = True
    params.nthread = threads
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr(disable=False):  # llama.cpp prints every tensor to stderr
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp could not requantize the model (code {code})")
    partial.replace(target)
    return target


def fast_copy(source: Path, cache_dir: Path, identity: str, kind: str = FAST_TYPE) -> Path:
    """`source` as `kind`, converted once and cached under `cache_dir` by the source's identity."""
    target = cache_dir / f"{source.stem}.{kind}.{identity}.gguf"
    if target.is_file():
        return target
    log.info("requantizing model to %s (once; cached)", kind)
    return requantize(source, target, kind)


def serving_copy(resolved: ResolvedModel, cache_dir: Path, kind: str = FAST_TYPE) -> ResolvedModel:
    """The model file the worker should load: a file of a type measured slow on CPU is replaced by its
    `kind` copy (converted once, cached); any other type is served as it is. kind="off" keeps the file."""
    if kind == "off" or not resolved.found:
        return resolved
    try:
        current = file_ftype(resolved.path)
    except Exception as exc:  # an unreadable header: llama.cpp's load will say what is wrong
        log.warning("could not read the model's quantization type: %s", type(exc).__name__)
        return resolved
    if current not in SLOW_ON_CPU:
        if current not in FAST_ON_CPU:
            log.warning("model quantization %s has not been measured on CPU here; %s or Q4_0 read prompts "
                        "fastest (python -m ml quantize)", current, FAST_TYPE)
        return resolved
    from ml.engine import file_identity

    try:
        copy = fast_copy(resolved.path, cache_dir, file_identity(resolved.path), kind)
    except (OSError, RuntimeError) as exc:  # a full or read-only disk: serve the shipped file, slower
        log.warning("could not make the %s copy (%s): serving the %s file", kind, type(exc).__name__, current)
        return resolved
    log.info("serving the %s copy of a %s model (faster prompt reading on CPU)", kind, current)
    return ResolvedModel(resolved.model_id, copy, resolved.searched + (str(copy),))
