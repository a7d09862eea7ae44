import string
from collections import Counter

from accounts.ids import public_id, random_token


def test_a_token_has_the_length_asked_and_only_letters_and_digits():
    for length in (1, 12, 24, 40, 300):
        token = random_token(length)
        assert len(token) == length
        assert set(token) <= set(string.ascii_letters + string.digits)


def test_every_character_of_the_alphabet_is_equally_likely():
    # 1,240,000 draws over 62 characters: 20,000 expected each (standard deviation
    # about 140). Modulo bias (bytes 248-255 folded onto the first 8 characters,
    # 5/256 each against 4/256) would raise those 8 to about 24,200; a fair draw
    # keeps their mean within 20,000 ± 250 (5 standard deviations of that mean).
    counts = Counter(random_token(1_240_000))
    assert len(counts) == 62
    first_eight = [counts[c] for c in string.ascii_letters[:8]]
    assert abs(sum(first_eight) / 8 - 20_000) < 250
    assert all(19_000 < n < 21_000 for n in counts.values())


def test_a_public_id_is_its_prefix_and_a_token():
    identifier = public_id("evt", 24)
    assert identifier.startswith("evt_")
    assert len(identifier) == 28
    assert public_id("evt", 24) != identifier
