"""The validation set of bench/quality.py, generated: one provider with a voice and facts of their own.

Maya grooms dogs at Happy Paws. Her replies open warmly ("Hey hey!", "Hi friend!") and always end with
"Woof, Maya 🐾"; her facts (prices, hours, durations, policies) are hers alone, so a model that has not
read her history can only guess them. Sixteen topics, six client phrasings each:

- history: phrasings 0-2 of every topic, each an exchange in a client's own conversation (what her Mac
  syncs: the examples' source and the history-only adapter's training data);
- train: phrasings 3-4 of the TRAIN topics as training samples (the replies she edited or used);
- test: phrasings 3-5 of the TEST topics (questions her history does not hold word for word), with the
  reply she would really send: like a provider does, she states the fact the way she always has, with
  one of her openers. Train and test topics are disjoint: nothing is tuned on the test topics.

PARAPHRASES (train topics only, not in the JSON): three more questions per train topic in words her history
never uses ("Do you do pedicures for pups?" for nail trims): what a search by shared words cannot find, to
compare searches by meaning on (bench/examples_relevance.py paraphrases) without looking at the test topics.

    python bench/data/voice_set.py   # writes bench/data/voice_set.json (what the bench reads)
"""

from __future__ import annotations

import json
from pathlib import Path

SIGN_OFF = "Woof, Maya 🐾"
OPENERS = ["Hey hey!", "Hi friend!", "Hey there!", "Hiya!"]

# topic: (the fact, six ways a client asks about it)
TOPICS: dict[str, tuple[str, list[str]]] = {
    "full_groom": ("A full groom is $65 for small dogs and $85 for big ones.", [
        "How much is a full groom?", "What do you charge for a full groom for my lab?",
        "Price for a full grooming please?", "How much would a full groom be for my poodle?",
        "What's the cost of a full groom?", "Could you tell me your full groom price?"]),
    "bath": ("A bath and brush is $40.", [
        "How much is just a bath?", "What does a bath and brush cost?", "Price for a bath only?",
        "How much for a simple bath for my beagle?", "What do you charge for a bath and brush?",
        "Is a bath expensive? How much?"]),
    "nails": ("Nail trims are $15, no appointment needed.", [
        "Do you do nail trims? How much?", "How much to clip my dog's nails?", "Price for a nail trim?",
        "Can I bring him in for just his nails? What's the price?", "What do nail clippings cost?",
        "Do I need to book a nail trim, and how much is it?"]),
    "hours": ("We're open Tuesday to Saturday, 9am to 5pm.", [
        "What are your opening hours?", "When are you open?", "Are you open on Mondays?",
        "What time do you open on Saturday?", "Which days are you open?", "What are your hours this week?"]),
    "duration": ("A full groom takes about 2 hours.", [
        "How long does a full groom take?", "How long will my dog be there?", "How many hours is a groom?",
        "How long should I plan for the groom?", "How much time does grooming take?",
        "When will she be done if I drop her off?"]),
    "puppy": ("A puppy's first groom is $35 and takes 45 minutes.", [
        "My puppy needs her first groom, how much?", "Do you do puppy grooms?", "How much for a puppy cut?",
        "What do you charge for a 4 month old puppy?", "Is there a puppy package?",
        "How long is a puppy's first groom?"]),
    "vaccines": ("We need proof of rabies and bordetella vaccines.", [
        "Does my dog need vaccines to come in?", "What vaccinations do you require?",
        "Do you need his shot records?", "Which vaccines does my dog need for grooming?",
        "Do I have to show vaccination papers?", "Are vaccines required before a groom?"]),
    "cancel": ("Please cancel 24 hours ahead, or there's a $20 fee.", [
        "What's your cancellation policy?", "Is there a fee if I cancel?", "Can I cancel last minute?",
        "What happens if I need to cancel tomorrow's appointment?", "Do you charge for cancelling?",
        "How late can I cancel without paying?"]),
    "parking": ("Free parking right behind the shop on Elm Street.", [
        "Is there parking near you?", "Where do I park?", "Do you have parking for customers?",
        "Where can I leave my car when I drop off?", "Is parking free at the shop?",
        "Any parking close to the salon?"]),
    "payment": ("We take cards, cash and Venmo.", [
        "Can I pay by card?", "What payment do you take?", "Do you accept Venmo?",
        "Can I pay with Apple Pay or card?", "Is cash ok?", "How can I pay for the groom?"]),
    "cats": ("Sorry, we only groom dogs, no cats.", [
        "Do you groom cats?", "Can you do my cat too?", "Do you take cats?", "Could you groom my kitten?",
        "Is it dogs only or cats as well?", "My cat needs a trim, can you help?"]),
    "deshedding": ("A deshedding treatment is $25 on top of any bath.", [
        "Do you do deshedding?", "How much is a deshed treatment?", "My husky sheds a lot, can you help?",
        "What's the price of deshedding?", "Can you add a deshedding treatment?",
        "Is there something for heavy shedding?"]),
    "matted": ("Matted coats need a shave-down, $20 extra.", [
        "My dog is really matted, can you fix it?", "Do you charge more for mats?",
        "What if his coat is matted?", "Her fur is full of knots, is that extra?",
        "How much extra for a matted dog?", "Can you brush out bad mats?"]),
    "teeth": ("Teeth brushing is $10 with any groom.", [
        "Do you brush teeth?", "Can you clean my dog's teeth?", "Is teeth brushing extra?",
        "How much to add teeth brushing?", "Do you offer dental cleaning for dogs?",
        "Can you brush her teeth during the groom?"]),
    "pickup": ("Pickup is by 5pm, we text you when your pup is ready.", [
        "When do I pick him up?", "What time is pickup?", "How will I know she's ready?",
        "When should I come back for my dog?", "Do you text when he's done?", "What's the latest I can pick up?"]),
    "slots": ("I have Thursday at 11am or Friday at 2pm open.", [
        "Do you have any openings this week?", "When is your next free slot?", "Can I book this week?",
        "Any appointments available soon?", "What times do you have free this week?",
        "Could you fit my dog in this week?"]),
}
TEST_TOPICS = ["cats", "deshedding", "matted", "teeth", "pickup", "slots"]
TRAIN_TOPICS = [t for t in TOPICS if t not in TEST_TOPICS]

# train topic: three ways of asking that share (almost) no word with its history phrasings or its fact
PARAPHRASES: dict[str, list[str]] = {
    "full_groom": ["What would the complete works set me back for my terrier?",
                   "Ballpark figure for the whole package, haircut and all?", "How expensive is the deluxe haircut?"],
    "bath": ["Could he just get washed, and what would that run me?", "What's the rate for a wash, no haircut?",
             "Shampoo only, what's the damage?"],
    "nails": ["Her claws click on the floor, can you take care of that?", "Do you do pedicures for pups?",
              "His claws are way too long, can you shorten them?"],
    "hours": ["What time do you close on weekdays?", "Is the shop staffed on Sunday?",
              "Until when can I swing by tomorrow?"],
    "duration": ["Is it a whole-day thing or quicker?", "How much of my afternoon will the appointment eat up?",
                 "Roughly what's the turnaround on a haircut?"],
    "puppy": ["We just got a 10 week old pup, can she come in?", "Do you have something gentle for a baby dog?",
              "Our new little one has never been to a salon, what do you suggest?"],
    "vaccines": ["Does he have to be up to date on his jabs?", "Do I bring paperwork from the vet?",
                 "Is a kennel cough certificate needed?"],
    "cancel": ["Something came up, can I call off Friday?", "What if we can't make it on the day?",
               "Can I back out of my booking?"],
    "parking": ["Is there somewhere to stop the van outside?", "Will I get a ticket if I pull up out front?",
                "Any garage or lot nearby?"],
    "payment": ["Is Visa fine?", "Can I settle up with my phone?", "Can I Zelle you or hand over bills?"],
}
assert set(PARAPHRASES) == set(TRAIN_TOPICS), "paraphrases of the train topics only"


def asked(topic: str, k: int) -> str:
    """The k-th way a client asks about a topic: 0-5 its phrasings, 6-8 its paraphrases (train topics)."""
    asks = TOPICS[topic][1]
    return asks[k] if k < len(asks) else PARAPHRASES[topic][k - len(asks)]


def reply(topic: str, k: int) -> str:
    """Maya's reply on a topic, the k-th wording: an opener, the fact, her sign-off."""
    return f"{OPENERS[k % len(OPENERS)]} {TOPICS[topic][0]} {SIGN_OFF}"


def states_another_fact(text: str, truth: str) -> bool:
    """Whether a reply states, word for word (case and spacing aside), the fact of another topic than its
    true reply's: the error behind a repeated training reply, whatever opener it comes with."""
    said, meant = " ".join(text.lower().split()), " ".join(truth.lower().split())
    return any(f in said and f not in meant for f in (" ".join(fact.lower().split()) for fact, _ in TOPICS.values()))


def build() -> dict:
    history = [{"topic": topic, "message": asks[k], "reply": reply(topic, k)}
               for topic, (_, asks) in TOPICS.items() for k in range(3)]
    train = [{"topic": topic, "message": TOPICS[topic][1][k], "reply": reply(topic, k)}
             for topic in TRAIN_TOPICS for k in (3, 4)]
    test = [{"topic": topic, "message": TOPICS[topic][1][k], "reply": reply(topic, k)}
            for topic in TEST_TOPICS for k in (3, 4, 5)]
    return {"provider": "Maya (Happy Paws dog grooming)", "signOff": SIGN_OFF, "history": history,
            "train": train, "test": test}


if __name__ == "__main__":
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
