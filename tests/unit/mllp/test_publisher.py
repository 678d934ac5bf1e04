"""The publisher's recent-key cache: every content of a key, bounded."""

from __future__ import annotations

from adapters.mllp.publisher import RecentKeys


def test_recent_keys_keep_each_content_of_a_key() -> None:
    cache = RecentKeys(2)
    cache.put("HL7|A|B|1", "h1", "env-1", "AA")
    cache.put("HL7|A|B|1", "h2", "env|2", "AE")
    cache.put("HL7|A|B|1", "h1", "env-3", "AA")  # the same content again: replaced, not added
    assert cache.get("HL7|A|B|1") == {"h1": ("env-3", "AA"), "h2": ("env|2", "AE")}
    cache.put("HL7|A|B|2", "h1", "env-4", "AA")
    cache.put("HL7|A|B|3", "h1", "env-5", "AA")  # over size: the least recently used key goes
    assert cache.get("HL7|A|B|1") is None and cache.get("HL7|A|B|3") == {"h1": ("env-5", "AA")}
