"""Reply engines: llama.cpp for real, a fake with the same interface for fast unit tests."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ml.registry import ResolvedModel

log = logging.getLogger(__name__)


@dataclass
class ModelStatus:
    """What health reports about the model (never message content)."""

    loaded: bool
    model_id: str
    path: str | None
    searched: list[str] = field(default_factory=list)
    error: str | None = None
    gpu_available: bool = False
    load_seconds: float | None = None
    file_identity: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int
    seconds: float


class ReplyEngine(ABC):
    """A loaded model that completes prompts."""

    status: ModelStatus

    @abstractmethod
    def complete(self, prompt: str, *, max_tokens: int = 64, temperature: float = 0.0,
                 stop: list[str] | None = None, seed: int = 0) -> Completion:
        """Raw completion of prompt."""


class UnavailableEngine(ReplyEngine):
    """Stands in when the model file is missing or broken: the worker keeps running, jobs fail clearly."""

    def __init__(self, status: ModelStatus):
        self.status = status

    def complete(self, prompt, **_):
        raise RuntimeError(self.status.error or "model not loaded")


class FakeEngine(ReplyEngine):
    """Deterministic stand-in for unit tests: echoes a fixed reply."""

    def __init__(self, reply: str = "Sounds good, see you then!"):
        self.reply = reply
        self.status = ModelStatus(loaded=True, model_id="fake", path=None)

    def complete(self, prompt, *, max_tokens=64, temperature=0.0, stop=None, seed=0):
        words = self.reply.split()[:max_tokens]
        return Completion(" ".join(words), len(words), 0.0)


def file_identity(path: Path) -> str:
    """A cheap identity of a model file: size, mtime and a hash of its first MiB."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return f"{stat.st_size}-{int(stat.st_mtime)}-{head}"


class LlamaEngine(ReplyEngine):
    """llama-cpp-python, loaded once per process; calls are serialised (one context)."""

    def __init__(self, model, status: ModelStatus):
        self._model = model
        self._lock = threading.Lock()
        self.status = status

    @classmethod
    def load(cls, resolved: ResolvedModel, *, context_size: int, gpu_layers: int, threads: int) -> ReplyEngine:
        """Load the GGUF; on failure return an UnavailableEngine that says why and where it looked."""
        status = ModelStatus(loaded=False, model_id=resolved.model_id,
                             path=str(resolved.path) if resolved.path else None,
                             searched=list(resolved.searched))
        try:
            import llama_cpp
        except ImportError as exc:
            status.error = f"llama-cpp-python is not installed: {exc}"
            return UnavailableEngine(status)
        status.gpu_available = bool(llama_cpp.llama_supports_gpu_offload())
        if not resolved.found:
            status.error = "model file not found; looked in: " + ", ".join(resolved.searched)
            return UnavailableEngine(status)
        started = time.perf_counter()
        try:
            model = llama_cpp.Llama(model_path=str(resolved.path), n_ctx=context_size,
                                    n_gpu_layers=gpu_layers, n_threads=threads,
                                    n_threads_batch=threads, verbose=False, seed=0)
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError for a broken file
            status.error = f"model file could not be loaded: {type(exc).__name__}: {exc}"
            return UnavailableEngine(status)
        status.loaded = True
        status.load_seconds = round(time.perf_counter() - started, 3)
        status.file_identity = file_identity(resolved.path)
        log.info("model loaded id=%s seconds=%.3f threads=%d ctx=%d", resolved.model_id,
                 status.load_seconds, threads, context_size)
        return cls(model, status)

    def complete(self, prompt, *, max_tokens=64, temperature=0.0, stop=None, seed=0):
        started = time.perf_counter()
        with self._lock:
            out = self._model.create_completion(prompt, max_tokens=max_tokens, temperature=temperature,
                                                stop=stop or [], seed=seed)
        return Completion(out["choices"][0]["text"], out["usage"]["completion_tokens"],
                          time.perf_counter() - started)


def cpu_threads() -> int:
    return os.cpu_count() or 1
