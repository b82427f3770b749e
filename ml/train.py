"""LoRA fine-tuning on the provider's replies (peft + transformers, CPU), exported for llama.cpp.

`train_lora` is the whole recipe; `python -m convassist.worker.training JOB_ID` runs it for a
TrainingJob row in its own process (the worker starts it), so generation keeps being served while it
trains.

Recipe (defaults that learned a provider's voice on ≈40 samples): the same
GGUF the worker serves, loaded by transformers; LoRA on every linear layer of the attention and MLP;
loss only on the reply tokens, each sample weighted by its quality; a held-out eval split with the eval
loss before training and after every epoch; early stopping on it, which chooses the epoch; then the
adapter is trained again on every sample for that many epochs (a small provider's held-out fifth teaches
too), while the adapter of the split, which never saw the held-out samples, is what the judge scores;
warm-up then linear decay. The exported GGUF adapter is checked against the peft model before use.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("ml.train")

MAX_EXPORT_DIVERGENCE = 1.5  # llama.cpp with the exported adapter vs the peft model, × the noise floor
# (ml.lora_export.export_divergence: a right export measured ×0.78-0.79, a wrong q/k permutation ×2.4-2.6)
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
REPLY_END = "\nThem:"  # the model learns to end its turn the way the prompt's stop sequences expect


@dataclass(frozen=True)
class TrainSample:
    prompt: str  # ends with "Me:"
    reply: str
    quality: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """A training run's knobs. The defaults (3 epochs, learning rate 1e-3, rank 8) are the product's,
    chosen on the validation set's train topics with bench/tune.py (never on its test topics; numbers
    there). With the provider's examples in half of the samples, lr 2e-3 scored like 1e-3 with examples
    in the prompt (chrF 92.5) and better without them (26.7 vs 23.9), but through the product
    (bench/quality.py) it made the voice repeat training replies as answers to other questions (4
    verbatim copies, "We're open Tuesday to Saturday" for "Any appointments available soon?", vs 0-1 at
    1e-3): a confident wrong fact is worse than a missing sign-off, so 1e-3 stays."""

    epochs: int = 3  # passes over the samples, at least; a small set gets more (min_steps)
    # updates the voice gets at least before early stopping may end it: a small provider's passes are
    # few steps each (14 samples: 3 of 4), and the number of updates is what teaches. On a small
    # provider of the validation set's train topics (`bench/tune.py small`: 14 samples, questions of
    # other topics without examples): 3 passes (9 updates, 21 with the refit) signed 0 of 9 replies
    # off in the voice, chrF 13.0; 6 passes (18, 42) 8 of 9, chrF 30.0, no training reply repeated
    # (lr 2e-3 instead: 27.9, 7 of 9); with examples 90.7 -> 92.0; training 105 -> 168 s.
    # A provider with 48 samples (10 updates a pass) keeps 3 passes.
    min_steps: int = 18
    learning_rate: float = 1e-3
    rank: int = 8
    eval_fraction: float = 0.2
    batch_size: int = 4
    warmup_fraction: float = 0.1
    patience: int = 1  # epochs without eval improvement before stopping
    max_length: int = 512
    seed: int = 0
    threads: int = 1
    # after the eval split chose the epoch, train again on every sample for that many. bench/tune.py
    # (questions of topics the voice never saw, alone / with examples in the prompt): without it chrF
    # 23.9 / 92.5 and the sign-off on 78% / 100%; with it 26.2 / 92.5 and 100% / 100%; training 163 -> 280 s
    refit: bool = True


@dataclass
class TrainResult:
    train_loss: list[float] = field(default_factory=list)  # per step
    eval_loss: list[float] = field(default_factory=list)  # before training, then per epoch
    steps: int = 0
    epochs_run: int = 0
    best_epoch: int = 0
    seconds_per_step: float = 0.0
    refit: bool = False  # the served adapter was trained again on every sample
    held_out_adapter: Path | None = None  # the adapter that never saw the eval split: what a judge scores
    export_divergence: float = 0.0  # × the quantization noise floor (ml.lora_export)
    train_samples: int = 0
    eval_samples: int = 0
    steps_per_epoch: int = 0
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)


ProgressCallback = Callable[[int, int, TrainResult], None]  # (step, total steps, result so far)


def split_samples(samples: list[TrainSample], eval_fraction: float, seed: int) -> tuple[list, list]:
    """A seeded shuffle, then at least one eval sample and at least one train sample."""
    shuffled = samples[:]
    random.Random(seed).shuffle(shuffled)
    n_eval = min(len(shuffled) - 1, max(1, round(len(shuffled) * eval_fraction)))
    return shuffled[n_eval:], shuffled[:n_eval]


def encode(tokenizer, sample: TrainSample, max_length: int) -> dict:
    """Token ids and labels: the prompt is context only (label -100), the reply is what is learned."""
    prompt_ids = tokenizer(sample.prompt, add_special_tokens=False).input_ids
    reply_ids = tokenizer(" " + sample.reply.strip() + REPLY_END, add_special_tokens=False).input_ids
    room = max_length - len(reply_ids)
    prompt_ids = prompt_ids[-room:] if room > 0 else []
    reply_ids = reply_ids[:max_length]
    return {"input_ids": prompt_ids + reply_ids, "labels": [-100] * len(prompt_ids) + reply_ids,
            "weight": float(sample.quality)}


def batch_loss(model, batch: list[dict], pad_id: int, *, weighted: bool):
    """Mean loss per sample over its reply tokens, then a (quality-)weighted mean over the batch."""
    import torch
    import torch.nn.functional as F

    width = max(len(item["input_ids"]) for item in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        labels[row, :n] = torch.tensor(item["labels"])
        mask[row, :n] = 1
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    token_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
                                 reduction="none").view(target.shape)
    counted = (target != -100).float()
    per_sample = (token_loss * counted).sum(1) / counted.sum(1).clamp(min=1)
    weights = torch.tensor([item["weight"] if weighted else 1.0 for item in batch]).clamp(min=1e-3)
    return (per_sample * weights).sum() / weights.sum()


def lora_state(model) -> dict:
    """A copy of the model's LoRA weights."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def load_base(gguf_path: Path):
    """Tokenizer and fp32 model from the GGUF the worker serves (Q4_1 dequantized by transformers)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    return tokenizer, model


def train_lora(gguf_path: Path, samples: list[TrainSample], config: TrainConfig, adapter_path: Path,
               on_progress: ProgressCallback | None = None, *, keep_model: bool = False) -> TrainResult:
    """Fine-tune, export to `adapter_path` and verify the export; raises if the export disagrees.
    result.held_out_adapter is the adapter to judge on the eval split: `adapter_path` itself, or after a
    refit the split's best, exported beside it (`<name>.held-out.gguf`; the caller removes it).

    keep_model: also return the peft model and tokenizer on the result (for tests and the bench)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import get_linear_schedule_with_warmup

    from ml.lora_export import export_divergence, export_gguf_adapter

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    adapter_path.parent.mkdir(parents=True, exist_ok=True)  # fail before the training, not after it
    tokenizer, base = load_base(gguf_path)
    model = get_peft_model(base, LoraConfig(r=config.rank, lora_alpha=2 * config.rank, lora_dropout=0.05,
                                            target_modules=TARGET_MODULES, task_type="CAUSAL_LM"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set, eval_set = split_samples(samples, config.eval_fraction, config.seed)
    train_items = [encode(tokenizer, s, config.max_length) for s in train_set]
    eval_items = [encode(tokenizer, s, config.max_length) for s in eval_set]
    result = TrainResult(train_samples=len(train_items), eval_samples=len(eval_items))

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [float(batch_loss(model, eval_items[i:i + config.batch_size], pad_id, weighted=False))
                      * len(eval_items[i:i + config.batch_size])
                      for i in range(0, len(eval_items), config.batch_size)]
        model.train()
        return sum(losses) / len(eval_items)

    steps_per_epoch = math.ceil(len(train_items) / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    refit_steps = math.ceil(len(samples) / config.batch_size) if config.refit else 0
    # the refit's steps are counted from the start (its epochs assumed all), so progress never jumps back
    total_steps = (steps_per_epoch + refit_steps) * epochs
    result.steps_per_epoch = steps_per_epoch
    fresh = lora_state(model)  # the initial LoRA weights: a refit starts from them again
    result.eval_loss.append(round(evaluate(), 4))
    best = (result.eval_loss[0], fresh)
    step, step_seconds = 0, 0.0
    rng = random.Random(config.seed)

    def run(items: list[dict], epochs: int, watch: bool) -> None:
        """Train on items for up to `epochs`; watch: evaluate after each epoch, keep the best, stop early."""
        nonlocal best, step, step_seconds
        planned = math.ceil(len(items) / config.batch_size) * epochs
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        schedule = get_linear_schedule_with_warmup(optimizer, max(1, int(planned * config.warmup_fraction)), planned)
        stale = 0
        model.train()
        for epoch in range(1, epochs + 1):
            order = items[:]
            rng.shuffle(order)
            for i in range(0, len(order), config.batch_size):
                started = time.perf_counter()
                loss = batch_loss(model, order[i:i + config.batch_size], pad_id, weighted=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step_seconds += time.perf_counter() - started
                step += 1
                result.train_loss.append(round(loss.item(), 4))
                result.steps = step
                if on_progress:
                    on_progress(step, max(total_steps, step), result)
            if not watch:
                continue
            result.eval_loss.append(round(evaluate(), 4))
            result.epochs_run = epoch
            if result.eval_loss[-1] < best[0]:
                best, stale = (result.eval_loss[-1], lora_state(model)), 0
                result.best_epoch = epoch
            else:
                stale += 1
                if stale >= config.patience:
                    log.info("early stop epoch=%d eval_loss=%.4f best=%.4f", epoch, result.eval_loss[-1], best[0])
                    break

    run(train_items, epochs, watch=True)
    model.load_state_dict(best[1], strict=False)
    result.held_out_adapter = adapter_path
    replies = [s.reply for s in samples]
    try:
        if config.refit and result.best_epoch:
            # the held-out samples chose the epoch; now every sample teaches, for that many epochs
            result.held_out_adapter = adapter_path.with_name(adapter_path.stem + ".held-out.gguf")
            model.eval()
            export_gguf_adapter(model, result.held_out_adapter, alpha=2 * config.rank, replies=replies)
            model.load_state_dict(fresh, strict=False)
            run(train_items + eval_items, result.best_epoch, watch=False)
            result.refit = True
        result.seconds_per_step = round(step_seconds / max(step, 1), 4)
        model.eval()
        export_gguf_adapter(model, adapter_path, alpha=2 * config.rank, replies=replies)
        texts = [s.prompt + " " + s.reply for s in (eval_set + train_set)[:4]]
        result.export_divergence = round(export_divergence(model, tokenizer, gguf_path, adapter_path, texts,
                                                           max_tokens=config.max_length), 3)
        if result.export_divergence > MAX_EXPORT_DIVERGENCE:
            adapter_path.unlink(missing_ok=True)
            raise RuntimeError(f"the exported adapter disagrees with the trained model (divergence "
                               f"{result.export_divergence:.2f} x the noise floor > {MAX_EXPORT_DIVERGENCE}); "
                               "not published")
    except BaseException:  # stopped, failed or refused: no judge will read the split's adapter
        if result.held_out_adapter != adapter_path:
            result.held_out_adapter.unlink(missing_ok=True)
        raise
    if keep_model:
        result.model, result.tokenizer = model, tokenizer
    return result
