"""Training speed and its cost to serving, in one run:

1. seconds per training step of `ml.train.train_lora` (with its per-step progress callback) against a
   plain peft loop on the same data, model, batch size and threads (goal <= 1.1x);
2. reply latency through the API while a training job runs in the worker, against idle (goal <= 2x).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _stack import ROOT, bench_stack, paired_device

sys.path.insert(0, str(ROOT))

from ml.registry import resolve_model  # noqa: E402
from ml.train import TrainConfig, TrainSample, encode, load_base, train_lora  # noqa: E402
from tests.fixtures.voice_samples import samples  # noqa: E402

THREADS = int(os.environ.get("BENCH_TRAIN_THREADS", "1"))


def step_times_ours(gguf: Path, data: list[TrainSample]) -> list[float]:
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        train_lora(gguf, data, TrainConfig(epochs=2, threads=THREADS, patience=99), Path(tmp) / "a.gguf",
                   on_progress=lambda step, total, result: stamps.append(time.perf_counter()))
    # wall time between consecutive steps of one epoch (the epoch boundary includes the eval pass)
    per_epoch = len(stamps) // 2
    return [b - a for i, (a, b) in enumerate(zip(stamps, stamps[1:])) if (i + 1) % per_epoch]


def step_times_plain(gguf: Path, data: list[TrainSample]) -> list[float]:
    """The textbook loop: peft model, HF's own loss, AdamW, same batches of 4."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ml.train import TARGET_MODULES, split_samples

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    tokenizer, base = load_base(gguf)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=TARGET_MODULES,
                                            task_type="CAUSAL_LM"))
    train, _ = split_samples(data, 0.2, 0)
    items = [encode(tokenizer, s, 512) for s in train]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    pad = tokenizer.eos_token_id
    times = []
    model.train()
    for _ in range(2):
        for i in range(0, len(items), 4):
            batch = items[i:i + 4]
            width = max(len(b["input_ids"]) for b in batch)
            ids = torch.tensor([b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch])
            labels = torch.tensor([b["labels"] + [-100] * (width - len(b["labels"])) for b in batch])
            mask = torch.tensor([[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch])
            started = time.perf_counter()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - started)
    return times[1:]


def latency_while_training() -> tuple[list[float], list[float], int]:
    import httpx

    with bench_stack(worker=True) as stack:
        base = stack["start_api"]()
        token = paired_device(stack["db"]["bench"])[3]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=120, headers=headers) as api:
            for prompt, reply in samples():
                api.post("/api/training/samples", json={"inputContext": prompt, "expectedOutput": reply})

            def ask(i: int) -> float:
                started = time.perf_counter()
                body = api.post("/api/ml/generate", json={
                    "prompt": f"Them: Hi! Can I book appointment number {i} for a trim?\nMe:", "max_tokens": 32})
                body.raise_for_status()
                assert not body.json()["cached"]
                return time.perf_counter() - started

            idle = [ask(i) for i in range(15)]
            job = api.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct", "epochs": 3}).json()
            # measure only once steps run (loading the base model for training takes ~20 s first)
            while (current := api.get(f"/api/training/jobs/{job['jobId']}").json())["progress"] == 0:
                assert current["status"] in ("queued", "training"), current
                time.sleep(0.2)
            busy, i = [], 1000
            while api.get(f"/api/training/jobs/{job['jobId']}").json()["status"] == "training" and len(busy) < 40:
                busy.append(ask(i))
                i += 1
            final = api.get(f"/api/training/jobs/{job['jobId']}").json()
            assert final["status"] in ("training", "completed"), final
    return idle, busy, 0


def main() -> int:
    gguf = resolve_model("smollm2-135m-instruct", None, Path("/nonexistent")).path
    data = [TrainSample(p, r) for p, r in samples()]
    plain = statistics.median(step_times_plain(gguf, data))
    ours = statistics.median(step_times_ours(gguf, data))
    print(f"training step ({THREADS} thread(s), batch 4): ours {ours:.3f} s, plain peft loop {plain:.3f} s; "
          f"ratio {ours / plain:.3f} (goal <= 1.1: {'PASS' if ours / plain <= 1.1 else 'FAIL'})")
    idle, busy, _ = latency_while_training()
    ratio = statistics.median(busy) / statistics.median(idle)
    print(f"reply latency idle p50 {statistics.median(idle) * 1000:.0f} ms, while training p50 "
          f"{statistics.median(busy) * 1000:.0f} ms over {len(busy)} requests; ratio {ratio:.2f} "
          f"(goal <= 2: {'PASS' if ratio <= 2 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
