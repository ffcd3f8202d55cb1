"""MAX_TEXT_BYTES against the real server: any text the gateway accepts fits PostgreSQL's
tsvector (1 MiB of lexemes and positions), however it is crafted. Texts are built from the
kinds of tokens that grow most in the tsvector — hyphenated compounds (indexed whole and by
parts), URLs, e-mail addresses, letters that lengthen when lower-cased, digits — and sized to
the limit."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vectorplane.contract.limits import MAX_TEXT_BYTES

LETTERS = "abcdefghijklmnopqrstuvwxyz" + "ȺȾⱯÀÉÎ" + "бгджзклмнпрстфхцчшщ"
part = st.text(alphabet=LETTERS, min_size=1, max_size=4)
token = st.one_of(
    st.lists(part, min_size=2, max_size=6).map("-".join),
    st.tuples(part, part, part).map(lambda t: f"http://{t[0]}.io/{t[1]}?{t[2]}"),
    st.tuples(part, part).map(lambda t: f"{t[0]}@{t[1]}.org"),
    st.integers(0, 10**9).map(str),
    part,
)


def fill(tokens: list[str], size: int = MAX_TEXT_BYTES) -> str:
    """Repeat the tokens, made distinct by a counter, up to `size` bytes."""
    out: list[str] = []
    used = 0
    n = 0
    while True:
        word = f"{tokens[n % len(tokens)]}{n:x}"
        cost = len(word.encode()) + 1
        if used + cost > size:
            return " ".join(out)
        out.append(word)
        used += cost
        n += 1


def crafted_text(size: int) -> str:
    """Up to `size` UTF-8 bytes of distinct hyphenated compounds (`qab-qabz-qaby`, ...): the
    tsvector of such a text is ~2.7x its size (each compound is indexed whole and by parts)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: list[str] = []
    used = 0
    n = 0
    while True:
        stem, m = "q", n
        while True:
            stem += letters[m % 26]
            m //= 26
            if not m:
                break
        word = f"{stem}-{stem}z-{stem}y"
        if used + len(word) + 1 > size:
            return " ".join(words)
        words.append(word)
        used += len(word) + 1
        n += 1


@pytest.fixture(scope="module")
def conn(data_database: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(data_database, autocommit=True) as c:
        yield c


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])  # fmt: skip
@given(st.lists(token, min_size=1, max_size=30))
def test_every_accepted_text_fits_a_tsvector(
    conn: psycopg.Connection[tuple[object, ...]], tokens: list[str]
) -> None:
    text = fill(tokens)
    assert len(text.encode()) <= MAX_TEXT_BYTES
    row = conn.execute(
        "SELECT pg_column_size(to_tsvector('english', %s))", (text,)
    ).fetchone()
    assert row is not None


def test_the_margin_is_real(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The crafted worst case measured for the limit's docstring does fail at ~3x the limit:
    the property test above tries texts that could."""
    assert conn.execute("SELECT to_tsvector('english', %s) IS NOT NULL",
                        (crafted_text(MAX_TEXT_BYTES),)).fetchone() == (True,)  # fmt: skip
    text = crafted_text(3 * MAX_TEXT_BYTES)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        conn.execute("SELECT to_tsvector('english', %s)", (text,))
