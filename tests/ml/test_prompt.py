"""The prompt format, group names, stops and trimming (pure Python)."""

from ml.prompt import Turn, render, speaker_for, stops_for, trim_to_fit


def test_render_them_me_lines_ending_with_me():
    turns = [Turn("Them", "Hi, are you open Saturday?"), Turn("Me", "Yes, 9 to 5."), Turn("Them", "Great,\n2pm?")]
    assert render(turns) == "Them: Hi, are you open Saturday?\nMe: Yes, 9 to 5.\nThem: Great, 2pm?\nMe:"


def test_group_speakers_use_names_and_add_stops():
    assert speaker_for("incoming", "Carla", is_group=True) == "Carla"
    assert speaker_for("incoming", "Carla", is_group=False) == "Them"
    assert speaker_for("outgoing", "Carla", is_group=True) == "Me"
    assert speaker_for("incoming", "Me", is_group=True) == "Them"  # a name may not pose as us
    assert speaker_for("incoming", "Dr: Who", is_group=True) == "Dr Who"
    turns = [Turn("Carla", "hi"), Turn("Dee", "hey"), Turn("Me", "hello")]
    assert stops_for(turns) == ["\nThem:", "\nMe:", "\n\n", "\nCarla:", "\nDee:"]


def test_trim_drops_oldest_first_and_keeps_the_newest():
    turns = [Turn("Them", f"message number {i}") for i in range(10)]
    words = lambda text: len(text.split())  # noqa: E731
    kept = trim_to_fit(turns, words, budget=12)
    assert kept[-1].text == "message number 9"
    assert words(render(kept)) <= 12
    assert [t.text for t in kept] == [f"message number {i}" for i in range(10 - len(kept), 10)]


def test_trim_cuts_a_single_huge_message_from_its_start():
    huge = Turn("Them", " ".join(f"w{i}" for i in range(1000)))
    kept = trim_to_fit([huge], lambda text: len(text.split()), budget=50)
    assert len(kept) == 1 and kept[0].text.endswith("w999")
    assert len(render(kept).split()) <= 50


def test_trim_cuts_a_single_huge_word_from_its_start():
    """A pasted blob or link with no space is one word: it is cut by characters (its end kept), so the
    prompt fits; before, it stayed whole and the model refused the prompt."""
    blob = "".join(f"{i % 10}" for i in range(20_000)) + "END"
    chars = lambda text: len(text) // 3  # noqa: E731  (about three characters a token)
    kept = trim_to_fit([Turn("Me", "hello"), Turn("Them", blob)], chars, budget=100)
    assert len(kept) == 1 and kept[0].speaker == "Them" and kept[0].text.endswith("END")
    assert chars(render(kept)) <= 100 and len(kept[0].text) > 150  # cut to fit, not emptied


def test_a_prompt_that_fits_is_counted_once():
    calls = []

    def count(text):
        calls.append(text)
        return len(text.split())

    turns = [Turn("Them", "hi there"), Turn("Me", "hello"), Turn("Them", "are you open?")]
    assert trim_to_fit(turns, count, budget=100) == turns and len(calls) == 1
    calls.clear()
    assert trim_to_fit(turns, count, budget=5) == [Turn("Them", "are you open?")]
    assert len(calls) == 3  # all three, the last two, the last one
