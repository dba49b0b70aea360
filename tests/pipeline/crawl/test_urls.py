import pytest

from gemmaflow.pipeline.config import CrawlConfig
from gemmaflow.pipeline.crawl.urls import (
    BLOCKED_DOMAIN,
    BLOCKED_URL_PATTERN,
    NOT_ALLOWLISTED,
    UrlFilter,
    host_of,
    read_list,
    url_key,
)


def test_domain_lists_match_subdomains_but_not_lookalikes():
    lists = UrlFilter.from_lists(block_domains=["casino.example", "*.ads.example."])
    assert lists.verdict("https://casino.example/") == BLOCKED_DOMAIN
    assert lists.verdict("http://www.Casino.Example:8080/x") == BLOCKED_DOMAIN
    assert lists.verdict("https://a.b.ads.example/") == BLOCKED_DOMAIN
    assert lists.verdict("https://notcasino.example/") is None
    assert lists.verdict("https://casino.example.org/") is None


def test_url_patterns_prefix_and_regex():
    lists = UrlFilter.from_lists(block_url_patterns=["blog.example/tag/", r"re:[?&]sessionid=", "re:/print/?$"])
    assert lists.verdict("https://blog.example/tag/python") == BLOCKED_URL_PATTERN
    assert lists.verdict("http://BLOG.example/tag/") == BLOCKED_URL_PATTERN
    assert lists.verdict("https://blog.example/2024/post?sessionid=42") == BLOCKED_URL_PATTERN
    assert lists.verdict("https://blog.example/2024/post/print/") == BLOCKED_URL_PATTERN
    assert lists.verdict("https://blog.example/2024/post") is None


def test_allowlist_overrides_blocklist_and_allow_only():
    lists = UrlFilter.from_lists(block_domains=["example.com"], allow_domains=["docs.example.com"],
                                 allow_url_patterns=["example.com/press/"])  # fmt: skip
    assert lists.verdict("https://docs.example.com/a") is None
    assert lists.verdict("https://example.com/press/1") is None
    assert lists.verdict("https://example.com/other") == BLOCKED_DOMAIN
    only = UrlFilter.from_lists(allow_domains=["wiki.example"], allow_only=True)
    assert only.verdict("https://en.wiki.example/Heron") is None
    assert only.verdict("https://other.example/") == NOT_ALLOWLISTED
    assert not UrlFilter().active and only.active


def test_list_files_with_comments(tmp_path):
    blocked = tmp_path / "adult.txt"
    blocked.write_text("# UT1-style list\ncasino.example  # gambling\n\n  spam.example\n")
    assert read_list(str(blocked)) == ["casino.example", "spam.example"]
    lists = CrawlConfig(block_domain_files=(str(blocked),)).url_filter()
    assert lists.verdict("https://spam.example/") == BLOCKED_DOMAIN
    with pytest.raises(OSError):
        CrawlConfig(block_domain_files=(str(tmp_path / "missing.txt"),)).url_filter()
    bad = tmp_path / "bad.txt"
    bad.write_text("re:([unclosed\n")
    with pytest.raises(ValueError, match="bad URL regex"):
        CrawlConfig(block_url_pattern_files=(str(bad),)).url_filter()


def test_url_key_and_host():
    assert url_key("HTTPS://Example.COM:443/a?b=1#frag") == "https://example.com/a?b=1"
    assert url_key("http://example.com") == "http://example.com/"
    assert url_key("http://example.com:8080/x") == "http://example.com:8080/x"
    assert url_key("https://example.com/a?b=1") != url_key("https://example.com/a?b=2")
    assert host_of("not a url") == "" and host_of("http://[bad") == ""
