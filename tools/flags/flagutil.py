"""Small helpers shared by the flags data builder: name normalisation, durable writes, hashing.

Everything here is deterministic: no clocks, no randomness, no dict-order dependence.
"""

import hashlib
import json
import os
import re
import unicodedata


class BuildError(Exception):
    """A fact about the inputs that stops the build (missing package file, unknown code)."""


def fold(text):
    """Folds a name for matching across sources: no accents, no case, no punctuation.

    "Côte d'Ivoire", "Cote d’Ivoire" and "COTE D IVOIRE" all fold to "cote d ivoire"; a leading
    "the " is dropped ("the Gambia" = "Gambia").
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"[^0-9a-z]+", " ", plain.casefold()).strip()
    return plain[4:] if plain.startswith("the ") else plain


def strip_brackets(text):
    """Removes (...) and [...] asides: "Porto-Novo (official capital)" -> "Porto-Novo"."""
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "", text)
    return re.sub(r"\s+", " ", text).strip(" ,;")


def clean_space(text):
    """Collapses runs of white space; the Factbook uses " ++ " as a line separator, which
    becomes "; " unless a sentence ended there."""
    text = re.sub(r"([.!?])\s*\+\+\s*", r"\1 ", text)
    return re.sub(r"\s+", " ", text.replace("++", ";")).strip(" ;")


def answer_pattern(answer, literal=True):
    """The answer as a regex: case-insensitive, not inside a longer word or number. With
    literal=False, `answer` is already a regex (an alternation of escaped answers)."""
    body = re.escape(answer) if literal else f"(?:{answer})"
    return re.compile(r"(?<![0-9A-Za-z])" + body + r"(?![0-9A-Za-z])", re.IGNORECASE)


def mentions(text, answer):
    """Does text state the answer (case-insensitive, as a whole word or number)?"""
    return answer_pattern(answer).search(text) is not None


def stable_rank(*parts):
    """A fixed pseudo-random rank for a tuple of strings (SHA-256, not Python's salted hash)."""
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def jsonl_bytes(rows):
    """JSON Lines with a fixed field order (insertion order) and literal UTF-8."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write_if_changed(path, data):
    """Writes bytes durably (temp file, fsync, rename, fsync directory) unless the file already
    holds exactly these bytes. Returns True when the file was (re)written."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise BuildError(f"{path}: missing (is its package installed?)") from e
    except json.JSONDecodeError as e:
        raise BuildError(f"{path}: not valid JSON: {e}") from e
