"""The embedded Q4_1 model served as a Q8_0 copy: converted once, cached by the source's identity,
chosen only for a type measured slow, and its greedy replies compared with the original's (numbers
printed; the fidelity floor asserted)."""

from pathlib import Path

from ml.engine import LlamaEngine, file_identity
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS
from ml.quantize import file_ftype, serving_copy
from ml.registry import ResolvedModel, resolve_model

QUESTIONS = ["Hi! Do you have any openings on {d} for a haircut?", "How much is a colour and cut on {d}?",
             "Can I move my {d} appointment to later in the day?", "Is parking free near the salon on {d}?",
             "Do you do beard trims? Thinking of {d}.", "Running 10 minutes late for {d}, sorry!"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PROMPTS = [f"Them: Hello!\nMe: Hi, how can I help?\nThem: {QUESTIONS[i % 6].format(d=DAYS[(i * 3) % 7])}\nMe:"
           for i in range(12)]


def greedy(path: Path) -> list[str]:
    engine = LlamaEngine.load(ResolvedModel("x", path, (str(path),)), context_size=1024, gpu_layers=0, threads=2)
    assert engine.status.loaded, engine.status.error
    return [engine.generate(p, GenerationParams(max_tokens=24), list(BASE_STOPS)).text for p in PROMPTS]


def test_the_shipped_model_is_served_from_a_cached_q8_0_copy(tmp_path):
    shipped = resolve_model("smollm2-135m-instruct", None, tmp_path)
    assert file_ftype(shipped.path) == "Q4_1"
    served = serving_copy(shipped, tmp_path / "converted")
    assert served.path != shipped.path and file_ftype(served.path) == "Q8_0"
    assert file_identity(shipped.path) in served.path.name  # keyed by the source file
    converted_at = served.path.stat().st_mtime_ns
    again = serving_copy(shipped, tmp_path / "converted")
    assert again.path == served.path and again.path.stat().st_mtime_ns == converted_at  # cached, not redone
    assert list((tmp_path / "converted").iterdir()) == [served.path]  # no partial files left behind
    # a fast type is served as it is; "off" keeps the shipped file
    assert serving_copy(served, tmp_path / "again").path == served.path
    assert serving_copy(shipped, tmp_path / "off", "off").path == shipped.path

    original, q8 = greedy(shipped.path), greedy(served.path)
    q4 = greedy(serving_copy(shipped, tmp_path / "q4", "Q4_0").path)
    same_q8 = sum(a == b for a, b in zip(original, q8))
    same_q4 = sum(a == b for a, b in zip(original, q4))
    print(f"greedy replies identical to the shipped Q4_1: Q8_0 {same_q8}/{len(PROMPTS)}, Q4_0 {same_q4}/{len(PROMPTS)}")
    # the kernels quantize activations differently per type, so a 135M model's greedy path can turn at a
    # near-tie; Q8_0 stays the closest to the shipped model
    assert same_q8 >= len(PROMPTS) // 2 and same_q8 >= same_q4
