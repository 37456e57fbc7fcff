"""Seeded generator of the example's knowledge base and questions, in the shape of STaRK-Prime.

STaRK-Prime (a biomedical knowledge graph whose entities carry free text) is fetched
from a hub at run time, which cannot happen here, so this builds its shape instead:
drugs, diseases, genes, pathways and anatomy with names, descriptions and attributes,
joined by typed relations, and questions that need both (a drug's route is in its text,
the disease it treats is a relation). Names are fictional, so no encoder knows them.
Questions sometimes paraphrase an attribute ("taken by mouth" for oral), as users do.

``python -m examples.stark.generate`` rewrites ``data/`` (same seed, same bytes).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from examples.generated_data import write_splits

DATA_DIR = Path(__file__).parent / "data"
SEED = 15
SPLIT_SIZES = {"train": 60, "val": 40, "test": 40}
MAX_ANSWERS = 4  # questions with more gold entities than this are dropped

ANATOMY = ["liver", "kidney", "lung", "heart", "skin", "brain", "pancreas", "colon", "retina", "bone marrow",
           "thyroid", "spleen", "stomach", "skeletal muscle", "spinal cord"]
SYMPTOMS = ["fatigue", "joint pain", "fever", "weight loss", "shortness of breath", "headache", "rash",
            "muscle weakness", "blurred vision", "seizures", "chronic cough", "jaundice", "anemia",
            "swollen legs", "chest pain", "tremor", "night sweats", "abdominal pain", "dizziness"]
SIDE_EFFECTS = ["nausea", "drowsiness", "dry mouth", "insomnia", "hair loss", "liver toxicity", "skin rash",
                "diarrhea", "low blood pressure", "weight gain", "muscle cramps", "heart palpitations"]
ONSETS = ["childhood", "adult", "late"]
DISEASE_KINDS = ["syndrome", "fibrosis", "myopathy", "dystrophy", "carcinoma", "neuropathy", "anemia", "disease"]
GENE_FUNCTIONS = ["kinase", "transporter", "receptor", "transcription factor", "ion channel", "protease"]
STATUSES = ["approved", "investigational"]
# drug class -> name suffix (as real drug names carry their class)
DRUG_CLASSES = {"kinase inhibitor": "tinib", "monoclonal antibody": "mab", "corticosteroid": "sone",
                "beta blocker": "olol", "antiviral": "vir", "enzyme inhibitor": "stat"}
ROUTES = ["oral", "intravenous", "inhaled", "topical", "subcutaneous"]
# how questions may word an attribute instead of its literal name
PARAPHRASES = {
    "oral": "taken by mouth", "intravenous": "given by infusion", "inhaled": "breathed in from an inhaler",
    "topical": "applied to the skin", "subcutaneous": "injected under the skin",
    "kinase inhibitor": "drug that blocks kinase signalling", "monoclonal antibody": "antibody therapy",
    "corticosteroid": "steroid", "beta blocker": "drug that slows the heart rate",
    "antiviral": "drug against viruses", "enzyme inhibitor": "drug that blocks an enzyme",
    "shortness of breath": "trouble breathing", "joint pain": "aching joints", "weight loss": "losing weight",
    "hair loss": "losing hair", "drowsiness": "sleepiness", "liver toxicity": "liver damage",
    "low blood pressure": "hypotension", "muscle weakness": "weak muscles", "night sweats": "sweating at night",
}
PARAPHRASE_RATE = 0.4

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u"]
_CODAS = ["", "", "n", "r", "l", "s", "x"]
_LETTERS = "BCDFGHKLMNPRSTVWXZ"


@dataclass
class KB:
    """Entities by name (``type``, ``description``, ``attributes``) and (head, relation, tail) triples."""

    entities: dict[str, dict] = field(default_factory=dict)
    triples: list[tuple[str, str, str]] = field(default_factory=list)
    _heads: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    _tails: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, name: str, kind: str, description: str, **attributes: object) -> None:
        self.entities[name] = {"type": kind, "description": description, "attributes": attributes}

    def relate(self, head: str, relation: str, tail: str) -> None:
        self.triples.append((head, relation, tail))
        self._heads[relation, tail].add(head)
        self._tails[head, relation].add(tail)

    # sorted: sets iterate in hash order, which changes between processes
    def heads(self, relation: str, tail: str) -> list[str]:
        return sorted(self._heads[relation, tail])

    def tails(self, head: str, relation: str) -> list[str]:
        return sorted(self._tails[head, relation])


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def _unique(rng: random.Random, count: int, make, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        name = make()
        if name.lower() not in taken:
            taken.add(name.lower())
            out.append(name)
    return out


def _other(rng: random.Random, names: list[str], name: str) -> str:
    return rng.choice([n for n in names if n != name])


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def make_kb(rng: random.Random, drugs: int = 120, diseases: int = 90, genes: int = 140, pathways: int = 25) -> KB:
    """Entities with seeded attributes and relations; every disease has genes, drugs and an organ.
    Descriptions also name a look-alike entity of the same type (as real ones cite related
    work), so that a name in the question does not point at one entity's text only."""
    kb = KB()
    taken = {a.lower() for a in ANATOMY}
    for organ in ANATOMY:
        kb.add(organ, "anatomy", f"The {organ} is an organ or tissue of the human body.")
    pathway_names = _unique(rng, pathways, lambda: f"{_word(rng, 2).capitalize()} signaling pathway", taken)
    for p in pathway_names:
        focus = rng.choice(ANATOMY)
        kb.add(p, "pathway", f"The {p} is a cell signaling cascade best studied in the {focus}.", studied_in=focus)
    gene_names = _unique(rng, genes, lambda: "".join(rng.choices(_LETTERS, k=3)) + str(rng.randint(1, 19)), taken)
    for g in gene_names:
        function, chrom = rng.choice(GENE_FUNCTIONS), rng.choice([*map(str, range(1, 23)), "X"])
        organs = rng.sample(ANATOMY, rng.choice([1, 2]))
        kb.add(g, "gene", f"{g} encodes {_a(function)} located on chromosome {chrom}. "
                          f"It is mostly expressed in the {' and the '.join(organs)}. "
                          f"It is a paralog of {_other(rng, gene_names, g)}.",
               function=function, chromosome=chrom)
        for organ in organs:
            kb.relate(g, "expressed_in", organ)
        kb.relate(g, "part_of", rng.choice(pathway_names))
    disease_names = _unique(rng, diseases, lambda: f"{_word(rng, 2).capitalize()} {rng.choice(DISEASE_KINDS)}", taken)
    for d in disease_names:
        organ, onset, symptoms = rng.choice(ANATOMY), rng.choice(ONSETS), rng.sample(SYMPTOMS, 3)
        kb.add(d, "disease", f"{d} is a {onset}-onset disorder of the {organ}. Patients present with "
                             f"{symptoms[0]}, {symptoms[1]} and {symptoms[2]}. "
                             f"It is often misdiagnosed as {_other(rng, disease_names, d)}.",
               onset=onset, symptoms=symptoms)
        kb.relate(d, "affects", organ)
        for g in rng.sample(gene_names, rng.choice([1, 2, 3])):
            kb.relate(g, "associated_with", d)
    for cls, suffix in [(c, s) for c, s in DRUG_CLASSES.items() for _ in range(drugs // len(DRUG_CLASSES))]:
        name = _unique(rng, 1, lambda s=suffix: (_word(rng, 2) + s).capitalize(), taken)[0]
        route, status, effects = rng.choice(ROUTES), rng.choice(STATUSES), rng.sample(SIDE_EFFECTS, 2)
        kb.add(name, "drug", f"{name} is {_a(status)} {route} {cls}. Reported side effects include "
                             f"{effects[0]} and {effects[1]}. "
                             f"Its trials excluded patients with {rng.choice(disease_names)}.",
               drug_class=cls, route=route, status=status, side_effects=effects)
        for d in rng.sample(disease_names, rng.choice([1, 2])):
            kb.relate(name, "treats", d)
        for g in rng.sample(gene_names, rng.choice([1, 2])):
            kb.relate(name, "targets", g)
    return kb


def _say(rng: random.Random, value: str) -> str:
    """The attribute as the question words it: literally, or now and then paraphrased."""
    return PARAPHRASES[value] if value in PARAPHRASES and rng.random() < PARAPHRASE_RATE else value


def _routed(rng: random.Random, route: str, noun: str) -> str:
    """``noun`` qualified by ``route``: "oral drug", or paraphrased after it ("drug taken by mouth")."""
    said = _say(rng, route)
    return f"{said} {noun}" if said == route else f"{noun} {said}"


def questions(kb: KB, rng: random.Random) -> list[dict]:
    """Candidate questions of seven templates, each with its gold entity set (all that satisfy it)."""
    ents = kb.entities
    of = defaultdict(list)
    for name, e in ents.items():
        of[e["type"]].append(name)
    attr = {n: e["attributes"] for n, e in ents.items()}
    out = []

    def add(template: str, question: str, answers: set[str]) -> None:
        if 1 <= len(answers) <= MAX_ANSWERS:
            out.append({"question": question, "answers": sorted(answers), "template": template})

    for g in of["gene"]:  # text (route) + two relations (gene -> disease -> drug)
        diseases = kb.tails(g, "associated_with")
        drugs = {x for d in diseases for x in kb.heads("treats", d)}
        for route in sorted({attr[x]["route"] for x in drugs}):
            add("route_drug_for_gene", f"Which {_routed(rng, route, 'drug')} treats a disease associated with {g}?",
                {x for x in drugs if attr[x]["route"] == route})
    for d in of["disease"]:
        genes = kb.heads("associated_with", d)
        for organ in sorted({o for g in genes for o in kb.tails(g, "expressed_in")}):  # two named entities
            add("gene_for_disease_in_organ", f"Which gene linked to {d} is expressed in the {organ}?",
                {g for g in genes if organ in kb.tails(g, "expressed_in")})
        for cls in sorted({attr[x]["drug_class"] for x in kb.heads("treats", d)}):  # text (class) + one relation
            add("class_drug_for_disease", f"Which {_say(rng, cls)} is used to treat {d}?",
                {x for x in kb.heads("treats", d) if attr[x]["drug_class"] == cls})
    for g in of["gene"]:
        for x in kb.heads("targets", g):  # text (side effect) + one relation
            effect = rng.choice(attr[x]["side_effects"])
            add("drug_targeting_gene_with_effect", f"Which drug that targets {g} can cause {_say(rng, effect)}?",
                {y for y in kb.heads("targets", g) if effect in attr[y]["side_effects"]})
    for organ in ANATOMY:
        for d in kb.heads("affects", organ):  # text (onset, symptom) + one relation
            onset, symptom = attr[d]["onset"], rng.choice(attr[d]["symptoms"])
            add("disease_of_organ_with_symptom",
                f"What {onset}-onset disease of the {organ} causes {_say(rng, symptom)}?",
                {e for e in kb.heads("affects", organ)
                 if attr[e]["onset"] == onset and symptom in attr[e]["symptoms"]})
    for p in of["pathway"]:
        members = kb.heads("part_of", p)
        for function in sorted({attr[g]["function"] for g in members}):  # text (function) + one relation
            add("gene_in_pathway_with_function", f"Which {function} gene belongs to the {p}?",
                {g for g in members if attr[g]["function"] == function})
    for x in of["drug"]:  # text only: no entity is named
        a = attr[x]
        effect = rng.choice(a["side_effects"])
        add("drug_by_description",
            f"Which {_routed(rng, a['route'], _say(rng, a['drug_class']))} has {_say(rng, effect)} as a side effect?",
            {y for y in of["drug"] if attr[y]["route"] == a["route"] and attr[y]["drug_class"] == a["drug_class"]
             and effect in attr[y]["side_effects"]})
    unique = {q["question"]: q for q in out}
    return list(unique.values())


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """Entities, relations and the three disjoint question splits for ``seed``; every
    template is spread over the splits in the same proportions."""
    rng = random.Random(seed)
    kb = make_kb(rng)
    pool = questions(kb, rng)
    rng.shuffle(pool)
    by_template: dict[str, list[dict]] = defaultdict(list)
    for q in pool:
        by_template[q["template"]].append(q)
    interleaved = []  # round-robin over templates, so each split gets a balanced mix
    while any(by_template.values()):
        for name in sorted(by_template):
            if by_template[name]:
                interleaved.append(by_template[name].pop())
    out: dict[str, list[dict]] = {
        "entities": [{"name": n, **e} for n, e in kb.entities.items()],
        "relations": [{"head": h, "relation": r, "tail": t} for h, r, t in kb.triples],
    }
    start = 0
    for name, size in SPLIT_SIZES.items():
        rows = interleaved[start:start + size]
        start += size
        out[name] = [{"id": f"{name}-{i:03d}", **q} for i, q in enumerate(rows)]
    return out


def write(seed: int = SEED, directory: Path = DATA_DIR) -> None:
    """Write the generated splits of ``seed`` to ``directory``."""
    write_splits(generate(seed), directory)


if __name__ == "__main__":
    write()
