"""The worker keeps what it read of recent conversations: a follow-up after new messages evaluates only
the new tokens and says exactly what a model that read everything afresh says. Kept states are filed
per owner, conversation and adapter."""

from pathlib import Path

from ml.engine import LlamaEngine
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS, Turn, render
from ml.quantize import serving_copy
from ml.registry import resolve_model

WINDOW = 10
GREEDY = GenerationParams(max_tokens=24)


def chat(n: int, topic: str) -> list[Turn]:
    return [Turn("Them" if i % 2 == 0 else "Me",
                 f"{topic} question {i}: could we meet on Friday afternoon?" if i % 2 == 0
                 else f"Sure, {topic} answer {i}: Friday at {i % 12 + 1}pm works.") for i in range(n)]


def engine(tmp_path: Path) -> LlamaEngine:
    resolved = serving_copy(resolve_model("smollm2-135m-instruct", None, tmp_path), tmp_path / "converted")
    loaded = LlamaEngine.load(resolved, context_size=2048, gpu_layers=0, threads=2)
    assert loaded.status.loaded, loaded.status.error
    return loaded


def test_a_follow_up_reads_only_what_is_new_and_says_the_same(tmp_path):
    model = engine(tmp_path)
    memory = model._memory
    ana = chat(15, "hair")
    first = model.generate(render(ana[:11]), GREEDY, BASE_STOPS, session="ana:c1")
    assert first.prompt_evaluated == first.prompt_tokens  # cold: everything read
    model.generate(render(chat(9, "garden")), GREEDY, BASE_STOPS, session="bo:c7")  # another conversation

    # two new messages; the prompt still begins where it began (services.responses.window_size)
    window = ana[:13]
    follow = model.generate(render(window), GREEDY, BASE_STOPS, session="ana:c1")
    assert memory.restored == 1
    assert follow.prompt_evaluated <= follow.prompt_tokens // 3, (follow.prompt_evaluated, follow.prompt_tokens)
    print(f"follow-up read {follow.prompt_evaluated} of {follow.prompt_tokens} prompt tokens; first token "
          f"{follow.first_token_seconds * 1000:.0f} ms vs cold {first.first_token_seconds * 1000:.0f} ms")

    fresh = engine(tmp_path).generate(render(window), GREEDY, BASE_STOPS)
    # greedy: the same reply; the confidence differs in the last digits (llama.cpp's sums depend on how
    # the prompt was split into batches, as with any prefix reuse)
    assert follow.text == fresh.text and abs(follow.confidence - fresh.confidence) < 0.01


def test_kept_states_are_filed_per_owner_and_adapter(tmp_path):
    model = engine(tmp_path)
    memory = model._memory
    turns = chat(12, "nails")
    model.generate(render(turns[:WINDOW]), GREEDY, BASE_STOPS, session="ana:c1")
    model.generate(render(chat(9, "garden")), GREEDY, BASE_STOPS, session="bo:c7")
    # the same conversation id under another owner: nothing of Ana's is restored for it
    model.generate(render(chat(WINDOW + 1, "tax")), GREEDY, BASE_STOPS, session="mallory:c1")
    assert memory.restored == 0
    before = memory.restored
    model.generate(render(turns[:WINDOW + 2]), GREEDY, BASE_STOPS, session="ana:c1")
    assert memory.restored == before + 1  # Ana's own kept reading
