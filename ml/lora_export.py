"""Export a peft LoRA to a llama.cpp GGUF adapter, and check the export against the peft model.

The silent trap: llama GGUFs store the q/k projections with rows permuted for RoPE, and transformers
un-permutes them when it loads the GGUF. An adapter trained on the un-permuted weights must have its
q_proj and k_proj lora_B permuted back, or llama.cpp applies it to the wrong rows: nothing fails, the
replies just get worse. `export_divergence` catches that.

How an export is checked: llama.cpp computes with quantized weights and activations, transformers with
the weights dequantized, so the two never agree exactly and the top token flips wherever two tokens are
nearly tied (top-token agreement of a right export measured 0.93-0.98 depending on the provider's data,
the wrong permutation 0.95-0.97: no threshold separates them). Instead the divergence (KL, nats per
position) of llama.cpp with the adapter from the peft model is compared with the same divergence of the
two bases without it — the noise floor of this model's quantization, measured on the same texts. Measured
on SmolLM2 (two providers' data): a right export ×0.78-0.79 of the floor, the unpermuted one ×2.4-2.6, an
adapter llama.cpp did not apply ×300+.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# peft module name → llama.cpp tensor name
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
              "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.")


def permute_rows(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """The RoPE row permutation llama.cpp's converter applies to q/k (convert_hf_to_gguf's `permute`)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def export_gguf_adapter(peft_model, path: Path, *, alpha: float, replies: Sequence[str] = ()) -> int:
    """Write the adapter of `peft_model` as a llama.cpp LoRA GGUF; returns the number of tensors.
    replies: what it was trained to say; their fingerprints go in the file's metadata (ml.recital)."""
    import gguf

    from ml.recital import KEY, fingerprints

    config = peft_model.base_model.model.config
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    tensors: dict[str, np.ndarray] = {}
    for key, value in peft_model.state_dict().items():
        match = _KEY.search(key)
        if not match or "lora_" not in key:
            continue
        layer, module, which = int(match.group(1)), match.group(2), match.group(3)
        weights = value.detach().float().cpu().numpy()
        if which == "B" and module == "q_proj":
            weights = permute_rows(weights, n_head, n_head)
        elif which == "B" and module == "k_proj":
            weights = permute_rows(weights, n_head, n_kv)
        tensors[f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{which.lower()}"] = np.ascontiguousarray(weights)
    if not tensors:
        raise ValueError("the model has no LoRA weights to export")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    writer.add_array(KEY, fingerprints(list(replies)))  # nothing is written for no replies
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(tensors)


MIN_FLOOR = 1e-3  # nats: an unquantized model's floor is ~0; below this, differences are float noise


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _kl(expected: np.ndarray, got: np.ndarray) -> float:
    """Mean KL(expected || got) per position, from logits."""
    p_log, q_log = _log_softmax(expected), _log_softmax(got)
    return float((np.exp(p_log) * (p_log - q_log)).sum(-1).mean())


def export_divergence(peft_model, tokenizer, base_gguf: Path, adapter_gguf: Path, texts: list[str],
                      max_tokens: int = 512) -> float:
    """How far llama.cpp with the exported adapter is from the peft model, as a multiple of the noise
    floor (the same divergence between the two without the adapter): ≈1 or less when the export is right.
    Also proves the adapter loaded: llama.cpp ignores a bad lora_path silently. Each text is read up to
    max_tokens (a sample longer than llama.cpp's context here failed the whole job after training)."""
    import torch
    from llama_cpp import Llama

    encoded = [tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[:, :max_tokens]
               for text in texts]
    with torch.no_grad():
        tuned = [peft_model(input_ids=ids).logits[0].float().numpy() for ids in encoded]
        with peft_model.disable_adapter():
            plain = [peft_model(input_ids=ids).logits[0].float().numpy() for ids in encoded]

    def llama_logits(lora: Path | None) -> list[np.ndarray]:
        llm = Llama(model_path=str(base_gguf), lora_path=str(lora) if lora else None, logits_all=True, n_ctx=2048,
                    verbose=False, n_threads=1)
        if lora is not None and llm._lora_adapter is None:
            llm.close()
            raise RuntimeError("llama.cpp did not load the exported adapter")
        try:
            out = []
            for ids in encoded:
                llm.reset()
                llm.eval(ids[0].tolist())
                out.append(np.array(llm.scores[: ids.shape[1]], dtype=np.float32))  # a copy: the next eval overwrites scores
            return out
        finally:
            llm.close()

    served = llama_logits(adapter_gguf)
    base = llama_logits(None)
    divergence = float(np.mean([_kl(t, s) for t, s in zip(tuned, served)]))
    floor = float(np.mean([_kl(p, b) for p, b in zip(plain, base)]))
    return divergence / max(floor, MIN_FLOOR)
