"""Seeded generator of the example's data: a knowledge base of fictional entities and
questions over it, one or two hops deep.

Fictional names keep the model from answering out of its pretraining: every answer
has to come from the retrieved facts. Run ``python -m examples.offline_qa.generate``
to rewrite the committed files under ``data/`` (same seed, same bytes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from examples.generated_data import write_splits

DATA_DIR = Path(__file__).parent / "data"
SEED = 8
SPLIT_SIZES = {"train": 36, "val": 30, "test": 60}
ONE_HOP_EVERY = 3  # a third of each split is one-hop, the rest two-hop

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u"]
_CODAS = ["", "", "", "n", "r", "l", "s", "x"]
_HOBBIES = ["the cello", "chess", "rock climbing", "pottery", "the violin", "archery", "sailing", "birdwatching"]
_FOODS = ["saffron rice", "plum dumplings", "smoked eel", "honey bread", "lentil soup", "pear tarts"]
_PRODUCTS = ["solar kites", "glass drones", "paper batteries", "river pumps", "clockwork toys", "salt lamps"]


@dataclass(frozen=True)
class World:
    """The generated entities and their relations (the knowledge base before it is written as text)."""

    born_in: dict[str, str]  # person -> city
    works_at: dict[str, str]  # person -> company
    hobby: dict[str, str]  # person -> hobby
    founder: dict[str, str]  # company -> person
    hq: dict[str, str]  # company -> city
    product: dict[str, str]  # company -> product
    food: dict[str, str]  # city -> food


def _word(rng: random.Random, syllables: int) -> str:
    parts = (rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
    return "".join(parts).capitalize()


def _names(rng: random.Random, count: int, make) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = make()
        if name not in names and all(part not in " ".join(names).split() for part in name.split()):
            names.append(name)
    return names


def make_world(rng: random.Random, people: int = 36, companies: int = 12, cities: int = 10) -> World:
    """Entities with unique one-word parts, so a name token points at one entity only."""
    person_names = _names(rng, people, lambda: f"{_word(rng, 2)} {_word(rng, 2)}")
    company_names = _names(rng, companies, lambda: _word(rng, 3))
    city_names = _names(rng, cities, lambda: _word(rng, 2))
    taken = set(" ".join(person_names).split())
    company_names = [c for c in company_names if c not in taken] or company_names
    city_names = [c for c in city_names if c not in taken and c not in company_names] or city_names
    founders = rng.sample(person_names, len(company_names))
    return World(
        born_in={p: rng.choice(city_names) for p in person_names},
        works_at={p: rng.choice(company_names) for p in person_names},
        hobby={p: rng.choice(_HOBBIES) for p in person_names},
        founder=dict(zip(company_names, founders)),
        hq={c: rng.choice(city_names) for c in company_names},
        product={c: rng.choice(_PRODUCTS) for c in company_names},
        food={c: rng.choice(_FOODS) for c in city_names},
    )


def facts(world: World) -> list[str]:
    """The knowledge base: one short sentence per relation."""
    out = []
    for p in world.born_in:
        out += [f"{p} was born in {world.born_in[p]}.", f"{p} works at {world.works_at[p]}.",
                f"{p} enjoys {world.hobby[p]}."]
    for c in world.founder:
        out += [f"{c} was founded by {world.founder[c]}.", f"{c} has its headquarters in {world.hq[c]}.",
                f"{c} makes {world.product[c]}."]
    for city, dish in world.food.items():
        out.append(f"{city} is famous for its {dish}.")
    return out


def questions(world: World) -> list[dict[str, object]]:
    """Every question the world supports, with its gold answer and the facts it needs."""
    qs = []

    def add(question: str, answer: str, support: list[str]) -> None:
        qs.append({"question": question, "answer": answer, "hops": len(support), "support": support})

    for c, p in world.founder.items():
        add(f"Who founded {c}?", p, [f"{c} was founded by {p}."])
        add(f"In which city was the founder of {c} born?", world.born_in[p],
            [f"{c} was founded by {p}.", f"{p} was born in {world.born_in[p]}."])
        add(f"What does the founder of {c} enjoy?", world.hobby[p],
            [f"{c} was founded by {p}.", f"{p} enjoys {world.hobby[p]}."])
        city = world.hq[c]
        add(f"What food is the headquarters city of {c} famous for?", world.food[city],
            [f"{c} has its headquarters in {city}.", f"{city} is famous for its {world.food[city]}."])
    for p, c in world.works_at.items():
        add(f"Where was {p} born?", world.born_in[p], [f"{p} was born in {world.born_in[p]}."])
        add(f"In which city is the company that {p} works at headquartered?", world.hq[c],
            [f"{p} works at {c}.", f"{c} has its headquarters in {world.hq[c]}."])
        add(f"What does the company that {p} works at make?", world.product[c],
            [f"{p} works at {c}.", f"{c} makes {world.product[c]}."])
        add(f"Who founded the company that {p} works at?", world.founder[c],
            [f"{p} works at {c}.", f"{c} was founded by {world.founder[c]}."])
    return qs


def generate(seed: int = SEED) -> dict[str, list[dict[str, object]]]:
    """The knowledge base and the three disjoint question splits for ``seed``."""
    rng = random.Random(seed)
    world = make_world(rng)
    pool = questions(world)
    rng.shuffle(pool)
    by_hops = {h: [q for q in pool if q["hops"] == h] for h in (1, 2)}
    kb = [{"id": f"f{i:03d}", "text": t} for i, t in enumerate(facts(world))]
    out: dict[str, list[dict[str, object]]] = {"kb": kb}
    for name, size in SPLIT_SIZES.items():
        one_hop = size // ONE_HOP_EVERY
        rows = by_hops[1][:one_hop] + by_hops[2][:size - one_hop]
        del by_hops[1][:one_hop], by_hops[2][:size - one_hop]
        rng.shuffle(rows)
        out[name] = [{"id": f"{name}-{i:03d}", **q} for i, q in enumerate(rows)]
    return out


def write(seed: int = SEED, directory: Path = DATA_DIR) -> None:
    """Write the generated splits of ``seed`` to ``directory``."""
    write_splits(generate(seed), directory)


if __name__ == "__main__":
    write()
