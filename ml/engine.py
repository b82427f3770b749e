"""Reply engines: llama.cpp for real, a fake with the same interface for fast unit tests."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import math
import os
import sys
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

PENALTY_LAST_N = 64  # reply tokens the repetition penalty looks back over (GenerationParams.repeat_penalty)

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

    def generate_many(self, prompt: str, variants: Sequence[GenerationParams], stop: Sequence[str] = (),
                      on_text: TextCallback | None = None, session: str | None = None,
                      distinct_starts: bool = False) -> list[Generation]:
        """One reply per set of parameters to the same prompt (the first one streamed). Engines that can
        read the prompt once and decode the replies together do; this one makes them one by one.
        distinct_starts: each reply after the first begins with a token none before it began with
        (engines that draw tokens themselves honour it; this one cannot, and the caller's check for
        near-duplicates still holds)."""
        return [self.generate(prompt, params, stop, on_text if i == 0 else None, session=session)
                for i, params in enumerate(variants)]

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


class _Reply:
    """One reply as it decodes: its tokens, each one's probability (read from the logits llama.cpp
    computed anyway), its text. It ends at the end of text, a stop sequence (cut off) or max_tokens."""

    def __init__(self, model, prompt_tokens: list[int], stops: Sequence[str], max_tokens: int,
                 scratch: np.ndarray):
        import llama_cpp

        self._model, self._prompt, self._stops, self._max = model, prompt_tokens, stops, max_tokens
        self._scratch, self._eog = scratch, partial(llama_cpp.llama_vocab_is_eog, model._model.vocab)
        self.generated: list[int] = []
        self._offsets: list[int] = []  # each token's start offset in the text
        self._logprobs: list[float] = []
        self._raw, self.text, self._cut, self.done = b"", "", None, False

    def add(self, token: int, logits_pointer) -> bool:
        """Take the next token; True if the text to show grew (no stop sequence in it)."""
        if self._eog(token):
            self.done = True
            return False
        logits = np.ctypeslib.as_array(logits_pointer, shape=self._scratch.shape)
        top = logits.max()
        np.exp(np.subtract(logits, top, out=self._scratch), out=self._scratch)  # in place: no new arrays
        self._logprobs.append(float(logits[token] - top) - math.log(float(self._scratch.sum())))
        self._offsets.append(len(self.text))
        self.generated.append(token)
        self._raw += self._model.detokenize([token], prev_tokens=self._prompt + self.generated[:-1])
        self.text = self._raw.decode("utf-8", errors="ignore")
        hits = [self.text.find(s) for s in self._stops if s in self.text]
        if hits:
            self._cut, self.done = min(hits), True
            return False
        self.done = len(self.generated) >= self._max
        return True

    def shown(self) -> str:
        """The text so far without a trailing piece that may still become a stop sequence."""
        return self.text[: len(self.text) - _held_back(self.text, self._stops)]

    def result(self, seconds: float, evaluated: int, first: float) -> Generation:
        text, logprobs = self.text, self._logprobs
        if self._cut is not None:
            keep = sum(1 for offset in self._offsets if offset < self._cut)
            text, logprobs = text[:self._cut], logprobs[:keep]
        text = text.strip()
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs and text else 0.0
        return Generation(text, round(confidence, 4), len(logprobs), len(self._prompt), seconds,
                          decoded=len(self.generated), prompt_evaluated=evaluated, first_token_seconds=first)


def file_identity(path: Path) -> str:
    """A cheap identity of a model file: size, mtime and a hash of its first MiB."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return f"{stat.st_size}-{int(stat.st_mtime)}-{head}"


class LlamaEngine(ReplyEngine):
    """llama-cpp-python, loaded once per process; calls are serialised (one context).

    The high-level Llama gives the weights, the tokenizer and the adapters; generation runs in our
    own context (_Sequences), which holds one sequence per reply of a request so that several replies
    share one reading of the prompt and decode together."""

    MAX_LOADED_ADAPTERS = 16

    def __init__(self, model, status: ModelStatus, kv_memory_bytes: int = 256 << 20, *, context_size: int = 4096,
                 sequences: int = 3, threads: int = 2):
        self._model = model
        self._lock = threading.Lock()
        self.status = status
        self.context_size = context_size
        self._seqs = _Sequences(model, sequences, context_size, threads)
        self._adapters: OrderedDict[str, object] = OrderedDict()  # path → llama_adapter_lora_p, LRU
        self._adapter_path: str | None = None
        self._memory = ConversationMemory(kv_memory_bytes)
        self.defer_keeping = False
        self._pending: tuple[str, list[int]] | None = None

    def keep_pending(self) -> None:
        """Save what the last generation read (on the model thread, before any other call: the worker
        queues this right after the generation, so the KV cache still holds it)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with self._lock:
                self._memory.remember(self._seqs, *pending)

    def _key(self, session: str) -> str:
        """What a kept conversation is filed under: its owner and id, and the adapter that read it."""
        return f"{self._adapter_path or '-'}|{session}"

    def use_adapter(self, path: str | None) -> None:
        """Switch LoRA adapters in place (≈10 ms; the base model is never reloaded). What the context
        holds is dropped: its KV entries were computed with the previous adapter."""
        if path == self._adapter_path:
            return
        import llama_cpp

        with self._lock:
            handle = None
            if path is not None:
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
            self._seqs.use_adapter(handle)
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
             kv_memory_mb: int = 256, sequences: int = 3) -> ReplyEngine:
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
            # the Llama's own context is not used for generation (_Sequences is): keep it small
            model = llama_cpp.Llama(model_path=str(resolved.path), n_ctx=256, n_batch=256,
                                    n_gpu_layers=gpu_layers, n_threads=threads,
                                    n_threads_batch=threads, verbose=False, seed=0)
            engine = cls(model, status, kv_memory_mb << 20, context_size=context_size, sequences=sequences,
                         threads=threads)
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError for a broken file
            status.error = f"model file could not be loaded: {type(exc).__name__}: {exc}"
            return UnavailableEngine(status)
        status.loaded = True
        status.load_seconds = round(time.perf_counter() - started, 3)
        status.file_identity = file_identity(resolved.path)
        log.info("model loaded id=%s seconds=%.3f threads=%d ctx=%d sequences=%d", resolved.model_id,
                 status.load_seconds, threads, context_size, sequences)
        return engine

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        """One reply: see generate_many."""
        return self.generate_many(prompt, [params], stop, on_text, session)[0]

    def generate_many(self, prompt, variants, stop=(), on_text=None, session=None, distinct_starts=False):
        """One reply per set of parameters, decoded together: the prompt is read once (what the context
        or the conversation memory already holds of it is reused), given to one sequence per reply,
        and each llama_decode advances every unfinished reply by a token. Each token's probability is
        read from the logits llama.cpp computed anyway; the first reply streams, never showing a partial
        stop sequence. A reply says what it would say alone (each sequence has its own KV stream) —
        except that with distinct_starts each reply's first token is drawn without the tokens the
        replies before it began with (the first reply is untouched), and that with a LoRA adapter a batch
        of several was seen to part from one alone at a near-tie (the same reply's confidence 0.774 alone,
        0.773 batched: llama.cpp sums in another order for several columns)."""
        made: list[Generation] = []
        starts: list[int] | None = [] if distinct_starts else None
        for at in range(0, len(variants), self._seqs.count):
            made += self._decode_together(prompt, variants[at:at + self._seqs.count], stop,
                                          on_text if at == 0 else None, session, starts)
        return made

    def _decode_together(self, prompt, variants, stop, on_text, session, starts) -> list[Generation]:
        import llama_cpp

        started = time.perf_counter()
        tokens = self._model.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        if not tokens:
            raise ValueError("the prompt is empty")
        if len(tokens) + max(p.max_tokens for p in variants) > self.context_size:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit the context window")
        scratch = np.empty(self._model.n_vocab(), dtype=np.float32)  # reused: no new arrays per token
        replies = [_Reply(self._model, tokens, [s for s in stop if s], p.max_tokens, scratch) for p in variants]
        samplers = [_sampler(p, self._model.n_vocab()) for p in variants]
        seqs = self._seqs
        with self._lock:
            if session is not None:
                self._memory.resume(seqs, self._key(session), tokens)
            evaluated = seqs.read(tokens, len(variants))
            first = time.perf_counter() - started
            live, at, position = list(range(len(variants))), [-1] * len(variants), len(tokens)
            while live:  # each reply's first token from the prompt's logits, then one step for all live
                for s, i in zip(live, at):
                    logits = llama_cpp.llama_get_logits_ith(seqs.context.ctx, i)
                    if starts is not None and not replies[s].generated:
                        token = _sample_avoiding(samplers[s], seqs.context, i, logits, starts, scratch.shape)
                        starts.append(token)
                    else:
                        token = samplers[s].sample(seqs.context, i)
                    if replies[s].add(token, logits) and s == 0 and on_text:
                        on_text(replies[0].shown())
                live = [s for s in live if not replies[s].done]
                if live:
                    seqs.step([replies[s].generated[-1] for s in live], position, live)
                    at, position = list(range(len(live))), position + 1
            if session is not None:
                if self.defer_keeping:  # the worker saves it after the result is on its way (keep_pending)
                    self._pending = (self._key(session), tokens)
                else:
                    self._memory.remember(seqs, self._key(session), tokens)
        seconds = time.perf_counter() - started
        return [reply.result(seconds, evaluated if i == 0 else 0, first) for i, reply in enumerate(replies)]


def _sample_avoiding(sampler, context, index: int, logits_pointer, avoid: list[int], shape) -> int:
    """Sample with the tokens in `avoid` ruled out (their logits set to -inf for this draw, then put
    back: the reply's confidence is read from the model's own distribution)."""
    if not avoid:
        return sampler.sample(context, index)
    logits = np.ctypeslib.as_array(logits_pointer, shape=shape)
    kept = logits[avoid].copy()
    logits[avoid] = -np.inf
    try:
        return sampler.sample(context, index)
    finally:
        logits[avoid] = kept


def _sampler(params: GenerationParams, n_vocab: int):
    """A sampler chain for one sequence: llama-cpp-python's (Llama._init_sampler) for these parameters.
    The penalty sees only the reply's tokens (a chain learns the tokens it sampled, never the prompt's),
    so facts copied from the prompt are not penalized."""
    from llama_cpp._internals import LlamaSampler

    chain = LlamaSampler()
    if params.repeat_penalty != 1.0:
        chain.add_penalties(n_vocab, PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0)
    if params.temperature <= 0:
        chain.add_greedy()
    else:
        chain.add_top_k(params.top_k)
        chain.add_typical(1.0, 1)
        chain.add_top_p(params.top_p, 1)
        chain.add_min_p(0.05, 1)
        chain.add_temp(params.temperature)
        chain.add_dist(params.seed)
    return chain


class _Sequences:
    """The llama.cpp context the engine generates in: up to `count` sequences, one per reply of a
    request. Each sequence has its own KV stream (not unified) and flash attention is off, so a
    sequence computes exactly what it would alone. `tokens` is what sequence 0 holds: the next prompt
    reuses its common prefix; the other sequences are copies made per request."""

    PROMPT_BATCH = 512

    def __init__(self, model, count: int, context_size: int, threads: int):
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext

        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_seq_max, params.kv_unified = context_size * count, count, False  # n_ctx / count each
        params.n_batch = params.n_ubatch = self.PROMPT_BATCH
        params.n_threads = params.n_threads_batch = threads  # n_threads_batch's default would oversubscribe
        params.flash_attn_type, params.no_perf = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED, True
        self.count = count
        self.context = LlamaContext(model=model._model, params=params, verbose=False)
        self._batch = LlamaBatch(n_tokens=max(self.PROMPT_BATCH, count), embd=0, n_seq_max=1, verbose=False)
        self._llama, self._memory = llama_cpp, llama_cpp.llama_get_memory(self.context.ctx)
        self.tokens: list[int] = []

    def read(self, prompt: list[int], sequences: int) -> int:
        """Put the prompt in `sequences` sequences, the logits of its last token ready (index -1).
        Returns the prompt tokens this evaluated (those already held are reused; at least one is read
        again for its logits)."""
        llama = self._llama
        for s in range(1, self.count):
            llama.llama_memory_seq_rm(self._memory, s, -1, -1)
        reused = min(common_prefix(self.tokens, prompt), len(prompt) - 1)
        if not llama.llama_memory_seq_rm(self._memory, 0, reused, -1):  # a model whose cells cannot be cut
            self.clear()
            reused = 0
        del self.tokens[reused:]
        for at in range(reused, len(prompt), self.PROMPT_BATCH):  # the chunks llama-cpp-python reads
            chunk = prompt[at:at + self.PROMPT_BATCH]
            self._decode(chunk, list(range(at, at + len(chunk))), [0] * len(chunk), last_only=True)
            self.tokens += chunk
        if sequences > 1:
            self._share(sequences)
        return len(prompt) - reused

    def _share(self, sequences: int) -> None:
        """Give sequence 0's cells to sequences 1.. through its saved state: that copies the cells the
        prompt fills, where llama_memory_seq_cp between streams copies whole streams (context_size cells
        each, ≈35 ms per request for SmolLM2 at 4096 whatever the prompt's length)."""
        data = self.save(sys.maxsize)
        if data is None:
            raise RuntimeError("could not read the prompt's state")
        for s in range(1, sequences):
            if self._llama.llama_state_seq_set_data(self.context.ctx, data, len(data), s) != len(data):
                raise RuntimeError("could not give the prompt to another sequence")

    def step(self, tokens: list[int], position: int, sequences: list[int]) -> None:
        """One token for each sequence, all at the same position, each with its logits (index i)."""
        self._decode(tokens, [position] * len(tokens), sequences, last_only=False)
        if sequences[0] == 0:
            self.tokens.append(tokens[0])

    def _decode(self, tokens: list[int], positions: list[int], sequences: list[int], last_only: bool) -> None:
        b = self._batch.batch
        b.n_tokens = len(tokens)
        for i, (token, position, s) in enumerate(zip(tokens, positions, sequences)):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, position, 1, not last_only
            b.seq_id[i][0] = s
        b.logits[len(tokens) - 1] = True
        self.context.decode(self._batch)

    def clear(self) -> None:
        self._llama.llama_memory_clear(self._memory, True)
        self.tokens = []

    def use_adapter(self, handle) -> None:
        """Serve with this LoRA adapter (None: the base model); what the context holds is dropped."""
        llama = self._llama
        if handle is None:
            code = llama.llama_set_adapters_lora(self.context.ctx, None, 0, None)
        else:
            code = llama.llama_set_adapters_lora(self.context.ctx, (llama.llama_adapter_lora_p_ctypes * 1)(handle), 1,
                                                 (ctypes.c_float * 1)(1.0))
        if code != 0:
            raise RuntimeError(f"llama.cpp refused the adapter (code {code})")
        self.clear()

    def save(self, max_bytes: int) -> ctypes.Array | None:
        """Sequence 0's state (its KV cells), or None if it is larger than max_bytes or llama.cpp cannot
        give it."""
        llama, ctx = self._llama, self.context.ctx
        size = llama.llama_state_seq_get_size(ctx, 0)
        if size > max_bytes:
            return None
        data = (ctypes.c_uint8 * size)()
        return data if size and llama.llama_state_seq_get_data(ctx, data, size, 0) == size else None

    def restore(self, data: ctypes.Array, tokens: list[int]) -> bool:
        """Make sequence 0 hold a saved state (≈3 ms for 8 MB); on failure it holds nothing."""
        llama = self._llama
        llama.llama_memory_seq_rm(self._memory, 0, -1, -1)
        if llama.llama_state_seq_set_data(self.context.ctx, data, len(data), 0) != len(data):
            self.clear()
            return False
        self.tokens = list(tokens)
        return True


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


class ConversationMemory:
    """What the model read of recent conversations (llama.cpp's sequence state of each), so that a
    follow-up only reads what is new.

    The app keeps a conversation's prompt beginning where it began while the conversation grows
    (services.responses.window_size), so the next prompt extends the previous one. `resume` restores
    the kept state when it holds more of the prompt than the context does now (≈3 ms for 8 MB; the
    reading is exactly the one a fresh read gives), and only the new tokens are then evaluated.
    `remember` keeps the state after a generation, bounded by bytes (least recently used out). Keys
    carry the owner, the conversation and the adapter (LlamaEngine._key).
    """

    MIN_GAIN = 16  # tokens a restore must save over what the context already holds

    def __init__(self, max_bytes: int):
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes
        self.restored = 0  # for tests and the bench

    def resume(self, seqs: _Sequences, key: str, prompt: list[int]) -> None:
        """Put the most the model has read of this prompt into sequence 0."""
        kept = self._kept.get(key)
        if kept is None or self.max_bytes <= 0:
            return
        if common_prefix(kept.tokens, prompt) < common_prefix(seqs.tokens, prompt) + self.MIN_GAIN:
            return  # the context holds as much already
        if seqs.restore(kept.data, kept.tokens):
            self._kept.move_to_end(key)
            self.restored += 1

    def remember(self, seqs: _Sequences, key: str, prompt: list[int]) -> None:
        kept = self._kept.get(key)
        if kept is not None and kept.tokens[:len(prompt)] == prompt:
            self._kept.move_to_end(key)
            return  # already kept (a second round of suggestions for one request)
        if self.max_bytes <= 0 or seqs.tokens[:len(prompt)] != prompt:
            return  # nothing to keep, or the context holds something else by now
        data = seqs.save(self.max_bytes)
        if data is None:
            return
        if kept is not None:
            self._bytes -= len(kept.data)
        self._kept[key] = _Kept(list(seqs.tokens), data)
        self._kept.move_to_end(key)
        self._bytes += len(data)
        while self._bytes > self.max_bytes and len(self._kept) > 1:
            _, old = self._kept.popitem(last=False)
            self._bytes -= len(old.data)
