"""Reply engines: llama.cpp for real, a fake with the same interface for fast unit tests."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from ml.params import GenerationParams
from ml.registry import ResolvedModel

# llama.cpp's OpenMP threads spin while they wait for work (libgomp: 300,000 spins), so two workers
# on one machine burn the cores each other needs. How long to spin before sleeping, measured on 2 cores
# (bench/generation.py, bench/colocated_workers.py, bench/training.py):
#   spins     one reply   2 workers vs 1 (8 at once)   reply while training
#   300,000   255 ms      2.83x (unsafe)               444 ms
#   3,000     257 ms      0.80x                        482 ms
#   300       414 ms      0.53x                        598 ms   (threads sleep between decode steps)
# 3,000 keeps a lone worker as fast as spinning and makes co-located workers safe. Set before
# llama_cpp is imported (lazily, below); an explicit setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "3000")

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
class Generation:
    text: str
    confidence: float  # geometric mean of the reply tokens' probabilities (stop tokens excluded)
    tokens: int  # reply tokens (what the confidence covers)
    prompt_tokens: int
    seconds: float
    decoded: int = 0  # every token decoded, the stop sequence's included
    prompt_evaluated: int = 0  # prompt tokens evaluated (those already in the KV cache are reused)
    first_token_seconds: float = 0.0  # prompt evaluation plus the first token


TextCallback = Callable[[str], None]

# Every llama.cpp call runs on this one thread. ggml's OpenMP keeps a spinning thread team per calling
# thread: calls from asyncio.to_thread's changing pool threads left several teams competing for the
# two cores and made generation ~50% slower.
_MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")


async def on_model_thread(fn: Callable, *args):
    """Run a blocking model call off the event loop, on the model's own thread."""
    return await asyncio.get_running_loop().run_in_executor(_MODEL_THREAD, partial(fn, *args))


def queue_on_model_thread(fn: Callable, *args) -> asyncio.Future:
    """Queue a model call now (ahead of any call made later) without waiting for it."""
    return asyncio.get_running_loop().run_in_executor(_MODEL_THREAD, partial(fn, *args))


class ReplyEngine(ABC):
    """A loaded model that continues prompts."""

    status: ModelStatus
    context_size: int = 4096

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """How many tokens the prompt text takes."""

    @abstractmethod
    def generate(self, prompt: str, params: GenerationParams, stop: Sequence[str] = (),
                 on_text: TextCallback | None = None, session: str | None = None) -> Generation:
        """Continue prompt until a stop sequence, end of text or max_tokens; on_text gets the reply so far.
        session names the conversation (its owner and id): an engine may keep what it read of it."""

    def use_adapter(self, path: str | None) -> None:
        """Serve with this LoRA adapter file (None: the base model)."""
        if path is not None:
            raise RuntimeError("this engine cannot load LoRA adapters")

    def keep_pending(self) -> None:
        """Keep what the last generation read (an engine with defer_keeping saves it only when asked)."""


class UnavailableEngine(ReplyEngine):
    """Stands in when the model file is missing or broken: the worker keeps running, jobs fail clearly."""

    def __init__(self, status: ModelStatus):
        self.status = status

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        raise RuntimeError(self.status.error or "model not loaded")


class FakeEngine(ReplyEngine):
    """Deterministic stand-in for fast unit tests: the same interface, a fixed reply."""

    def __init__(self, reply: str = "Sounds good, see you then!", confidence: float = 0.5):
        self.reply, self.confidence = reply, confidence
        self.status = ModelStatus(loaded=True, model_id="fake", path=None, file_identity="fake")
        self.adapter: str | None = None

    def use_adapter(self, path):
        self.adapter = path

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        words = self.reply.split()[: params.max_tokens]
        for i in range(1, len(words) + 1):
            if on_text:
                on_text(" ".join(words[:i]))
        return Generation(" ".join(words), self.confidence, len(words), self.count_tokens(prompt), 0.0)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still be the start of a stop sequence."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop), len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return hold


def file_identity(path: Path) -> str:
    """A cheap identity of a model file: size, mtime and a hash of its first MiB."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return f"{stat.st_size}-{int(stat.st_mtime)}-{head}"


class LlamaEngine(ReplyEngine):
    """llama-cpp-python, loaded once per process; calls are serialised (one context)."""

    MAX_LOADED_ADAPTERS = 16

    def __init__(self, model, status: ModelStatus, kv_memory_bytes: int = 256 << 20):
        self._model = model
        self._lock = threading.Lock()
        self.status = status
        self._adapters: OrderedDict[str, object] = OrderedDict()  # path → llama_adapter_lora_p, LRU
        self._adapter_path: str | None = None
        self._memory = ConversationMemory(model, kv_memory_bytes)
        self.defer_keeping = False
        self._pending: tuple[str, list[int]] | None = None

    def keep_pending(self) -> None:
        """Save what the last generation read (on the model thread, before any other call: the worker
        queues this right after the generation, so the KV cache still holds it)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with self._lock:
                self._memory.remember(self._model, *pending)

    def _key(self, session: str) -> str:
        """What a kept conversation is filed under: its owner and id, and the adapter that read it."""
        return f"{self._adapter_path or '-'}|{session}"

    def use_adapter(self, path: str | None) -> None:
        """Switch LoRA adapters in place (≈10 ms; the base model is never reloaded). The prompt cache
        is cleared: its KV entries were computed with the previous adapter."""
        if path == self._adapter_path:
            return
        import llama_cpp

        with self._lock:
            ctx = self._model._ctx.ctx
            if path is None:
                code = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
            else:
                handle = self._adapters.get(path)
                if handle is None:
                    if not Path(path).is_file():
                        raise RuntimeError("the adapter file is missing")
                    handle = llama_cpp.llama_adapter_lora_init(self._model._model.model, path.encode())
                    if not handle:  # a bad file would otherwise silently give the base model
                        raise RuntimeError("the adapter file could not be loaded")
                    self._adapters[path] = handle
                    self._evict()
                self._adapters.move_to_end(path)
                code = llama_cpp.llama_set_adapters_lora(ctx, (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle), 1,
                                                         (ctypes.c_float * 1)(1.0))
            if code != 0:
                raise RuntimeError(f"llama.cpp refused the adapter (code {code})")
            self._model.reset()
            self._adapter_path = path
            log.info("adapter switched loaded=%d active=%s", len(self._adapters), path is not None)

    def _evict(self) -> None:
        import llama_cpp

        while len(self._adapters) > self.MAX_LOADED_ADAPTERS:
            old_path, old = next(iter(self._adapters.items()))
            if old_path == self._adapter_path:
                self._adapters.move_to_end(old_path)
                continue
            del self._adapters[old_path]
            llama_cpp.llama_adapter_lora_free(old)

    @classmethod
    def load(cls, resolved: ResolvedModel, *, context_size: int, gpu_layers: int, threads: int,
             kv_memory_mb: int = 256) -> ReplyEngine:
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
        engine = cls(model, status, kv_memory_mb << 20)
        engine.context_size = context_size
        return engine

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        """Our own decode loop over Llama.generate: the same sampling as create_completion, plus the
        probability of each generated token read from the logits llama.cpp already computed (no
        logits_all, so no slowdown) and streaming that never shows a partial stop sequence."""
        import llama_cpp

        model = self._model
        started = time.perf_counter()
        prompt_tokens = model.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        if len(prompt_tokens) + params.max_tokens > self.context_size:
            raise ValueError(f"prompt of {len(prompt_tokens)} tokens does not fit the context window")
        eos = model.token_eos()
        stops = [s for s in stop if s]
        generated: list[int] = []
        offsets: list[int] = []  # each token's start offset in the reply text
        logprobs: list[float] = []
        raw = b""
        text = ""
        cut = None
        scratch = np.empty(model.n_vocab(), dtype=np.float32)  # in place: no two new arrays per token
        with self._lock:
            model.set_seed(params.seed)
            if session is not None:
                self._memory.resume(model, self._key(session), prompt_tokens)
            # the prefix llama-cpp-python keeps from the previous prompt (Llama.generate's rule)
            reused = common_prefix(model._input_ids[:model.n_tokens], prompt_tokens)
            evaluated, first = max(1, len(prompt_tokens) - reused), 0.0
            for token in model.generate(prompt_tokens, temp=params.temperature, top_k=params.top_k,
                                        top_p=params.top_p, min_p=0.05, repeat_penalty=1.0, reset=True):
                first = first or time.perf_counter() - started
                if token == eos or llama_cpp.llama_vocab_is_eog(model._model.vocab, token):
                    break
                logits = np.ctypeslib.as_array(model._ctx.get_logits(), shape=scratch.shape)
                top = logits.max()
                np.exp(np.subtract(logits, top, out=scratch), out=scratch)
                logprobs.append(float(logits[token] - top) - math.log(float(scratch.sum())))
                offsets.append(len(text))
                generated.append(token)
                raw += model.detokenize([token], prev_tokens=prompt_tokens + generated[:-1])
                text = raw.decode("utf-8", errors="ignore")
                hits = [text.find(s) for s in stops if s in text]
                if hits:
                    cut = min(hits)
                    break
                if on_text:
                    on_text(text[: len(text) - _held_back(text, stops)])
                if len(generated) >= params.max_tokens:
                    break
            if session is not None:
                if self.defer_keeping:  # the worker saves it after the result is on its way (keep_pending)
                    self._pending = (self._key(session), prompt_tokens)
                else:
                    self._memory.remember(model, self._key(session), prompt_tokens)
        if cut is not None:
            keep = sum(1 for offset in offsets if offset < cut)
            text, logprobs = text[:cut], logprobs[:keep]
        text = text.strip()
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs and text else 0.0
        return Generation(text, round(confidence, 4), len(logprobs), len(prompt_tokens),
                          time.perf_counter() - started, decoded=len(generated), prompt_evaluated=evaluated,
                          first_token_seconds=first)


def common_prefix(a, b) -> int:
    """How many tokens two token sequences share from the start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Kept:
    tokens: list[int]
    data: ctypes.Array  # llama.cpp's sequence state (its KV cells)
    size: int


class ConversationMemory:
    """What the model read of recent conversations (llama.cpp's sequence state of each), so that a
    follow-up only reads what is new.

    The app keeps a conversation's prompt beginning where it began while the conversation grows
    (services.responses.window_size), so the next prompt extends the previous one. `resume` restores
    the kept state when it holds more of the prompt than the KV cache does now (≈3 ms for 8 MB; the
    reading is exactly the one a fresh read gives), and Llama.generate then evaluates only the new
    tokens. `remember` keeps the state after a generation, bounded by bytes (least recently used out).
    Keys carry the owner, the conversation and the adapter (LlamaEngine._key).
    """

    MIN_GAIN = 16  # tokens a restore must save over what the KV cache already holds

    def __init__(self, model, max_bytes: int):
        import llama_cpp

        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes
        self._llama = llama_cpp
        self.restored = 0  # for tests and the bench

    def resume(self, model, key: str, prompt: list[int]) -> None:
        """Put the most the model has read of this prompt into the KV cache."""
        kept = self._kept.get(key)
        if kept is None or self.max_bytes <= 0:
            return
        reused = common_prefix(kept.tokens, prompt)
        if reused < common_prefix(list(model._input_ids[:model.n_tokens]), prompt) + self.MIN_GAIN:
            return  # the KV cache holds as much already: Llama.generate's own prefix match does it
        llama, ctx = self._llama, model._ctx.ctx
        memory = llama.llama_get_memory(ctx)
        llama.llama_memory_clear(memory, False)
        if llama.llama_state_seq_set_data(ctx, kept.data, kept.size, 0) != kept.size:
            model.reset()  # could not restore: read it all
            return
        llama.llama_memory_seq_rm(memory, 0, reused, -1)  # what followed (an old reply) goes
        model.input_ids[:reused] = prompt[:reused]
        model.n_tokens = reused
        model._requires_eval = True  # the logits are not of this state: Llama.generate evaluates a token
        self._kept.move_to_end(key)
        self.restored += 1

    def remember(self, model, key: str, prompt: list[int]) -> None:
        kept = self._kept.get(key)
        if kept is not None and kept.tokens[:len(prompt)] == prompt:
            self._kept.move_to_end(key)
            return  # already kept (the second and third suggestions of one request)
        llama = self._llama
        ctx = model._ctx.ctx
        size = llama.llama_state_seq_get_size(ctx, 0)
        if size > self.max_bytes:  # also: max_bytes 0 keeps nothing
            return
        data = (ctypes.c_uint8 * size)()
        if llama.llama_state_seq_get_data(ctx, data, size, 0) != size:
            return
        if kept is not None:
            self._bytes -= kept.size
        self._kept[key] = _Kept(list(model._input_ids[:model.n_tokens]), data, size)
        self._kept.move_to_end(key)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._kept) > 1:
            _, old = self._kept.popitem(last=False)
            self._bytes -= old.size
