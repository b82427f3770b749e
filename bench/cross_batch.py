"""Would batching the replies of *different* conversations pay (issue 15, lever 3, last point)? Measured,
not built: in the worker's engine (its model file, context and threads), three different everyday
conversations answered one after another (cold, as the worker does today) vs read one by one into three
sequences and decoded together, greedy, one token of each per llama_decode. Prints the ratio; the
replies are checked to be the same both ways."""

from __future__ import annotations

import os
import statistics
import sys
import time

from followup import salon, worker_engine  # (it puts the repository on the path, through _stack)

N = int(os.environ.get("BENCH_N", "8"))


def main() -> int:
    import llama_cpp
    import numpy as np

    from ml.engine import _Reply, _sampler
    from ml.params import GenerationParams
    from ml.prompt import BASE_STOPS, Turn, render

    engine = worker_engine()
    greedy = GenerationParams(max_tokens=64)
    seqs, model = engine._seqs, engine._model

    def together(prompts: list[str]) -> list[str]:
        seqs.clear()
        tokens = [model.tokenize(p.encode(), add_bos=True, special=False) for p in prompts]
        scratch = np.empty(model.n_vocab(), dtype=np.float32)
        replies = [_Reply(model, t, list(BASE_STOPS), greedy.max_tokens, scratch) for t in tokens]
        samplers = [_sampler(greedy) for _ in prompts]
        for s, t in enumerate(tokens):  # each prompt read into its own sequence
            seqs._decode(t, list(range(len(t))), [s] * len(t), last_only=True)
            replies[s].add(samplers[s].sample(seqs.context, -1), llama_cpp.llama_get_logits_ith(seqs.context.ctx, -1))
        live = [s for s in range(len(prompts)) if not replies[s].done]
        while live:
            seqs._decode([replies[s].generated[-1] for s in live],
                         [len(tokens[s]) + len(replies[s].generated) - 1 for s in live], live, last_only=False)
            for i, s in enumerate(live):
                replies[s].add(samplers[s].sample(seqs.context, i), llama_cpp.llama_get_logits_ith(seqs.context.ctx, i))
            live = [s for s in live if not replies[s].done]
        return [r.result(0, 0, 0).text for r in replies]

    def apart(prompts: list[str]) -> list[str]:
        out = []
        for p in prompts:
            seqs.clear()
            out.append(engine.generate(p, greedy, BASE_STOPS).text)
        return out

    one_by_one, batched, same = [], [], 0
    for i in range(N):
        prompts = [render([Turn("Them" if m["direction"] == "incoming" else "Me", m["text"]) for m in salon(100 + 3 * i + k)])
                   for k in range(3)]
        started = time.perf_counter()
        a = apart(prompts)
        one_by_one.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        b = together(prompts)
        batched.append((time.perf_counter() - started) * 1000)
        same += a == b
    ratio = statistics.median(batched) / statistics.median(one_by_one)
    print(f"three conversations' replies: one after another p50 {statistics.median(one_by_one):.0f} ms, decoded "
          f"together p50 {statistics.median(batched):.0f} ms: ratio {ratio:.2f} (no goal: measured, not built); "
          f"the same replies both ways in {same} of {N}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
