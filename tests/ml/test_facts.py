"""Invented numbers: what a suggestion states that nobody in the conversation and none of the
provider's replies gave."""

from ml.facts import invented, numbers, unsupported


def test_the_same_fact_written_differently_is_the_same_number():
    assert numbers("$1,200.00") == numbers("1200") == {"1200"}
    assert numbers("at 10.30") == numbers("at 10:30") == {"10:30"}
    assert numbers("3pm for 45 minutes") == {"3", "45"}
    assert numbers("no numbers here, only three words") == set()


def test_only_numbers_nobody_gave_count():
    conversation = "Them: Can I come on Friday at 3pm?\nMe:"
    past = ["A colour and cut is $120.", "We close at 7pm today."]
    assert invented("Sure, Friday at 3pm, that's $120.", [conversation, *past]) == set()
    assert invented("See you tomorrow at 10pm, it's $95", [conversation, *past]) == {"10", "95"}
    assert invented("We close at 7 today", [conversation]) == {"7"}  # the provider's replies were not given


def test_what_to_check_is_shown_as_the_reply_writes_it():
    known = ["Them: Can I come at 3pm? Is it $45?", "Me: A cut is $45. See you at 10.30"]
    reply = "Sure! 3pm is fine, it's $60 now, 20% off next time, 10:30 works and so does 11am or 5 pm."
    assert unsupported(reply, known) == ["$60", "20%", "11am", "5 pm"]
    assert unsupported("See you at 3pm for $45.00", known) == []
    assert unsupported("Room 12b, 7am!", []) == ["12", "7am"]  # "12b" is not a time: the number alone
