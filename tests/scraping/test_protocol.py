"""Viewer page parsing and the HTTP client (retries, Retry-After, timeouts, robots.txt, delay)."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.helpers.cys_test_site import CysTestSite, default_stories, render_page
from scraping.http_client import FetchError, HttpClient, retry_after_seconds
from scraping.page_cache import PageCache
from scraping.site_protocol import (PageError, follow_link_form, is_ending_link, parse_viewer_page,
                                    viewer_url, DEFAULT_ENDING_LINKS)

LIVE_LIKE_PAGE = """<html><head><title>x</title></head><body>
<form name="pbForm" method="post" action="default.aspx?StoryId=14" id="pbForm">
<div><input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="/wEPDwUKMTY1NDU2MTA1Mg9kFgI=" />
<input type="hidden" name="__EVENTVALIDATION" value="abc" /></div>
<input type="hidden" name="pbAction" id="pbAction" value="" /><input type="hidden" name="pbValue" value="" />
<div class="title"><span id="_storyTitle">  The   Cave &amp; the Sea </span></div>
<!-- BEGIN MAIN -->
<div>You wake up in a cave.<br>It is \u201cdark\u201d\u2026<br/><br/>Water drips.</div>
<script>var x = "not text";</script>
<!-- END MAIN -->
<!-- Links -->
<ul>
<li><a href="javascript:void(0)" onclick="javascript:PostBack('FollowLink','48213');return false;">Go <b>north</b></a></li>
<li><a href="#" onclick='PostBack("FollowLink", "48214")'>Go south</a></li>
<li><a href="/help">Help (not a story link)</a></li>
<li><a onclick="PostBack('FollowLink','48299')">End Game and Leave Comments</a></li>
</ul>
<!-- Inventory -->
<ul><li>Torch</li><li> Rope </li></ul>
</form></body></html>"""


def test_parse_a_live_like_viewer_page():
    page = parse_viewer_page(LIVE_LIKE_PAGE)
    assert page.title == "The Cave & the Sea"
    assert page.text == 'You wake up in a cave.\nIt is "dark"...\n\nWater drips.'
    assert [(l.link_id, l.text) for l in page.links] == [
        ("48213", "Go north"), ("48214", "Go south"), ("48299", "End Game and Leave Comments")]
    assert page.inventory == ("Torch", "Rope")
    assert dict(page.form) == {"__VIEWSTATE": "/wEPDwUKMTY1NDU2MTA1Mg9kFgI=", "__EVENTVALIDATION": "abc",
                               "pbAction": "", "pbValue": ""}
    body = follow_link_form(page, "48214")
    assert body["pbAction"] == "FollowLink" and body["pbValue"] == "48214" and body["__EVENTVALIDATION"] == "abc"


def test_page_key_ignores_the_view_state_but_not_the_text():
    story = default_stories()["1"]
    a = parse_viewer_page(render_page("1", story, story.pages["lamp"], "state-one"))
    b = parse_viewer_page(render_page("1", story, story.pages["lamp"], "state-two"))
    c = parse_viewer_page(render_page("1", story, story.pages["dark"], "state-one"))
    assert a.form != b.form and a.key == b.key and a.key != c.key
    assert a.inventory == ("Brass key", "Wet matches")


@pytest.mark.parametrize("html, problem", [
    ("<html><body><h1>An error occurred.</h1></body></html>", "pbForm"),
    ('<html><form id="pbForm"></form><!-- BEGIN MAIN --> text without an end', "END MAIN"),
    ('<html><form id="pbForm"></form> no markers at all', "BEGIN MAIN"),
    ("", "not an HTML page"),
    ("%PDF-1.4 binary", "not an HTML page"),
])
def test_bad_pages_raise_a_clear_error(html, problem):
    with pytest.raises(PageError, match="story 7 link 3") as info:
        parse_viewer_page(html, "story 7 link 3")
    assert problem in str(info.value)


def test_ending_links_and_urls():
    assert all(is_ending_link(text, DEFAULT_ENDING_LINKS) for text in DEFAULT_ENDING_LINKS)
    assert is_ending_link("  end game and leave comments ", DEFAULT_ENDING_LINKS)
    assert not is_ending_link("End the war", DEFAULT_ENDING_LINKS)
    assert viewer_url("https://chooseyourstory.com/", 14) == \
        "https://chooseyourstory.com/story/viewer/default.aspx?StoryId=14"


def test_retry_after_header_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after_seconds(future) <= 31


def test_client_retries_429_and_500_honouring_retry_after():
    waits = []
    with CysTestSite(retry_after="7") as site:
        client = HttpClient(delay=0, backoff=0.5, sleep=waits.append)
        url = viewer_url(site.base_url, 1)
        page = parse_viewer_page(client.get(url).text)
        response = client.post(url, follow_link_form(page, "107"))  # answers 429 (Retry-After: 7) once
        assert response.status_code == 200 and "beam sweeps the sea" in response.text
        page = parse_viewer_page(client.get(url).text)  # back to the start page, where any link may be posted
        assert client.post(url, follow_link_form(page, "106")).status_code == 200  # 500 once, no Retry-After
    assert waits == [7.0, 0.5]  # the server's Retry-After, then the first exponential backoff step
    assert client.stats.retries == 2
    assert [status for m, _, link, status in site.log if link in ("106", "107")] == [429, 200, 500, 200]


def test_client_gives_up_after_max_retries_with_exponential_backoff():
    waits = []
    with CysTestSite(transient={("1", "101"): [503, 503, 503, 503]}) as site:
        client = HttpClient(delay=0, backoff=1.0, max_retries=3, sleep=waits.append)
        url = viewer_url(site.base_url, 1)
        page = parse_viewer_page(client.get(url).text)
        with pytest.raises(FetchError, match="after 4 attempt"):
            client.post(url, follow_link_form(page, "101"))
    assert waits == [1.0, 2.0, 4.0]


def test_every_request_has_a_timeout():
    # A server that accepts connections and never answers: the client must give up, not hang.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    threading.Thread(target=lambda: [accepted.append(server.accept()) for _ in range(4)], daemon=True).start()
    client = HttpClient(timeout=0.3, max_retries=1, backoff=0, delay=0, respect_robots=False)
    started = time.monotonic()
    with pytest.raises(FetchError, match="Timeout"):
        client.get(f"http://127.0.0.1:{server.getsockname()[1]}/story/viewer/default.aspx?StoryId=1")
    assert time.monotonic() - started < 10
    assert client.stats.requests == 2
    server.close()


def test_robots_txt_is_respected_and_delay_spaces_requests():
    sleeps = []
    with CysTestSite() as site:
        client = HttpClient(delay=0.25, sleep=lambda s: (sleeps.append(s), time.sleep(s)))
        with pytest.raises(FetchError, match="robots.txt"):
            client.get(viewer_url(site.base_url, 66))
        assert client.get(viewer_url(site.base_url, 1)).status_code == 200
        assert site.count(story_id="66") == 0
        ignoring = HttpClient(delay=0, respect_robots=False)
        assert ignoring.get(viewer_url(site.base_url, 66)).status_code == 200
    assert sleeps and all(0 < s <= 0.25 for s in sleeps)  # the robots.txt fetch and the GET were spaced


def test_page_cache_is_content_addressed_and_survives_reopening(tmp_path):
    with PageCache(tmp_path / "c") as cache:
        cache.put("1", "", "<html>start</html>", "u")
        cache.put("1", "101", "<html>same</html>", "u")
        cache.put("2", "201", "<html>same</html>", "u")
        assert cache.get("1", "999") is None
    assert len(list((tmp_path / "c" / "pages").rglob("*.html"))) == 2  # identical pages stored once
    with PageCache(tmp_path / "c", read_only=True) as cache:
        assert cache.get("2", "201") == "<html>same</html>" and cache.story_ids() == ["1"]
        with pytest.raises(Exception, match="read-only"):
            cache.put("1", "5", "x", "u")
    blob = next((tmp_path / "c" / "pages").rglob("*.html"))
    blob.write_text("tampered")
    with PageCache(tmp_path / "c") as cache, pytest.raises(Exception, match="damaged"):
        [cache.get("1", link) for link in ("", "101")]


def test_requests_session_keeps_the_cookie():
    with CysTestSite() as site:
        session = requests.Session()
        url = viewer_url(site.base_url, 1)
        page = parse_viewer_page(session.get(url, timeout=5).text)
        assert "ASP.NET_SessionId" in session.cookies
        fresh = requests.post(url, data=follow_link_form(page, "101"), timeout=5)  # no cookie: refused
        assert fresh.status_code == 400 and site.violations
