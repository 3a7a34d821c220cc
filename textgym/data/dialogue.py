"""Dialogue: reply to a user's message in a target tone.

Record fields: ``prompt`` ("User: Hi, my order has not arrived yet.\\nTone: apologetic\\nReply:"), ``completion``
(a reply in that tone), ``tone`` (one of :data:`TONES`), ``references`` (every reply the generator knows for
that message and tone). The replies carry the usual markers of each tone: apologies ("sorry", "apologize"),
courtesy ("please", "thank you"), excitement ("!", "love", "amazing") and warmth (positive words).

What the demonstration teaches: fitting replies to each kind of message, in all four tones. What it does not
teach: the asked tone. Each demonstration is a reply in a tone drawn at random (seeded; a quarter of them happen
to be the asked tone), while ``references`` stay the replies in the asked tone; a warm start that copies the
demonstrations answers in a random tone, and RL has to learn to follow the ``Tone:`` line.

Held-out dimension: (kind of message, tone) combinations. :data:`TEST_COMBINATIONS` (one per tone: an
enthusiastic reply to a problem, an apologetic one to good news, ...) occur only in test prompts; every kind and
every tone is trained on.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from textgym.data._split import make_loader

TONES = ("polite", "apologetic", "enthusiastic", "positive")
TEST_COMBINATIONS = frozenset({("problem", "enthusiastic"), ("news", "apologetic"), ("request", "positive"),
                               ("invite", "polite")})
GREETINGS = ("", "Hi, ", "Hello, ", "Hey, ")

# kind -> (message template, slot values, {tone: reply templates})
KINDS = {
    "problem": (
        "my {item} {problem}.",
        {"item": ("order", "package", "laptop", "phone", "chair", "parcel"),
         "problem": ("arrived broken", "has not arrived yet", "stopped working", "is missing a part")},
        {"apologetic": ("I am so sorry about your {item}. We will fix it right away.",
                        "We apologize for the trouble with your {item}. I am really sorry."),
         "polite": ("Thank you for letting us know. Could you please send us your order number?",
                    "Thank you for writing. Please share a photo of the {item} and we will help."),
         "enthusiastic": ("Thanks for writing! We would love to help, and we will sort out your {item} today!",
                          "We are on it! Your {item} will be fixed in no time!"),
         "positive": ("Good news, we can help with that. A new {item} is on its way.",
                      "Happy to help, we will make it right. You will get a great new {item} soon.")}),
    "news": (
        "I just {news}.",
        {"news": ("got a new job", "passed my driving test", "adopted a puppy", "finished my first marathon",
                  "moved into a new flat", "graduated from college", "got engaged", "won a chess tournament")},
        {"apologetic": ("I am sorry I did not reply sooner. Congratulations, you really {news}!",
                        "Sorry for the late answer, please forgive me. Congratulations!"),
         "polite": ("Thank you for sharing. Please accept my warm congratulations.",
                    "Thank you for telling me. Congratulations, that is very kind news."),
         "enthusiastic": ("Wow, that is amazing news! I am so excited for you!",
                          "Congratulations! I love this, you must be thrilled!"),
         "positive": ("That is wonderful. I am really happy for you.",
                      "What great news. You deserve it, well done.")}),
    "request": (
        "can you help me {task}?",
        {"task": ("reset my password", "change my booking", "find a good book", "plan a trip", "choose a laptop",
                  "write a cover letter", "cancel my order", "set up my printer")},
        {"apologetic": ("I am sorry, but I cannot {task} right now. I apologize for the trouble.",
                        "Sorry, I am not able to help with that today. Please forgive me."),
         "polite": ("Of course. Could you please tell me a little more? Thank you.",
                    "Certainly, I would be glad to help. Please share a few details."),
         "enthusiastic": ("Absolutely! I would love to help you {task}!",
                          "Yes, let us do it! This will be fun!"),
         "positive": ("Sure, I am happy to help you {task}. It will be easy.",
                      "Of course, that is a great idea. We can do it together.")}),
    "invite": (
        "would you like to {activity} on {day}?",
        {"activity": ("come to my party", "go hiking", "have dinner", "watch a movie", "play tennis"),
         "day": ("Friday", "Saturday", "Sunday", "Monday")},
        {"apologetic": ("I am so sorry, but I cannot make it on {day}. Please forgive me.",
                        "Sorry, I am busy on {day}. I apologize, maybe next time."),
         "polite": ("Thank you for the kind invitation. I would be glad to join you, please count me in.",
                    "Thank you for asking. I would be pleased to {activity} with you."),
         "enthusiastic": ("Yes! I would love to {activity} on {day}! It will be so much fun!",
                          "Absolutely, count me in! I cannot wait!"),
         "positive": ("That sounds lovely. I would be happy to {activity}.",
                      "What a nice idea. I am glad you asked me.")}),
    "complaint": (
        "the {service} was {issue} today.",
        {"service": ("train", "food", "wifi", "meeting", "hotel room", "bus"),
         "issue": ("late", "cold", "slow", "too long", "noisy")},
        {"apologetic": ("I am very sorry that the {service} was {issue}. We apologize for the trouble.",
                        "Sorry about that, it should not happen. Please accept our apologies."),
         "polite": ("Thank you for the feedback. Could you please tell us a little more?",
                    "Thank you for letting us know. We will kindly look into it."),
         "enthusiastic": ("Thanks so much for telling us! We love feedback and will make the {service} great!",
                          "Great feedback! We are excited to fix this!"),
         "positive": ("Thanks for the feedback. Good news: we are already improving the {service}.",
                      "We appreciate it. Tomorrow will be better, we are sure.")}),
}


@lru_cache(maxsize=1)
def _all_splits() -> dict[str, tuple[dict, ...]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    rng = random.Random(9)
    for kind, (message, slots, replies) in KINDS.items():
        for values in itertools.product(*slots.values()):
            filled = dict(zip(slots, values))
            for greeting, tone in itertools.product(GREETINGS, TONES):
                text = message.format(**filled)
                user = greeting + (text if greeting else text[0].upper() + text[1:])
                references = [reply.format(**filled) for reply in replies[tone]]
                demo = rng.choice(replies[rng.choice(TONES)]).format(**filled)  # a random tone, not the asked one
                splits["test" if (kind, tone) in TEST_COMBINATIONS else "train"].append(
                    {"prompt": f"User: {user}\nTone: {tone}\nReply:", "completion": " " + demo, "tone": tone,
                     "references": references})
    return {name: tuple(records) for name, records in splits.items()}


load = make_loader("dialogue", _all_splits, "Message + tone records.",
                   held_out="(kind of message, tone) combinations TEST_COMBINATIONS")
