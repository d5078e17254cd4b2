"""A small chooseyourstory.com look-alike for crawler tests and benchmarks (stdlib http.server, 127.0.0.1).

It speaks the viewer protocol the crawler relies on, and is strict about it so the tests catch a sloppy
client: GET /story/viewer/default.aspx?StoryId=<id> starts a cookie session on the story's first page;
a POST must carry the session cookie, echo the last `__VIEWSTATE` it was given, say pbAction=FollowLink
and name a link that the shown page holds (or any link of the story right after a GET, as on the real
site). Anything else is answered 400 and recorded in `violations`.

Stories (link ids are story-wide, as on the site):
  1  "The Old Lighthouse": a loop back to the start, a merge, a self-loop, two kinds of ending link, an
     inventory section; link 107 answers 429 with Retry-After once, link 106 answers 500 once.
  2  "Goblin Market": one link id shown on two pages, a link to a page without the form (broken).
  3  "The Maze": a generated 24-page graph with merges and loops (for resume and speed tests).
  404 story ids that do not exist answer 404; 5 answers a page without the form (unpublished);
  6 is malformed (no END MAIN marker); robots.txt disallows story 66.

Run alone: `python -m tests.helpers.cys_test_site` prints its base URL and serves until Ctrl-C;
`python -m tests.helpers.cys_test_site --snapshot <dir>` writes a page cache of stories 1 and 2 (tests/data/cys_snapshot).
"""
from __future__ import annotations

import html
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ENDING = "End Game and Leave Comments"
THE_END = "The End! (leave comments on game)"


@dataclass
class Page:
    text: str
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (link id, text, target page)
    inventory: list[str] = field(default_factory=list)
    broken: bool = False  # served without the form (what a crawler must report, not crash on)


@dataclass
class Story:
    title: str
    start: str
    pages: dict[str, Page]


def _lighthouse() -> Story:
    return Story("The Old Lighthouse", "start", {
        "start": Page("The storm drove you onto the rocks.\n\nAbove you, the old lighthouse is dark.",
                      [("101", "Climb the stairs", "stairs"), ("102", "Walk along the beach", "beach")]),
        "stairs": Page("The stairs wind up into darkness. A door creaks at the top.",
                       [("103", "Open the door", "lamp"), ("104", "Go back down", "start")]),
        "beach": Page("Footprints lead along the wet sand toward the lighthouse door.",
                      [("105", "Follow the footprints", "lamp"), ("106", "Swim out to the wreck", "drown")]),
        "lamp": Page("The lamp room. A brass key lies beside the great lamp.",
                     [("107", "Light the lamp", "saved"), ("108", "Smash the lamp", "dark")],
                     inventory=["Brass key", "Wet matches"]),
        "saved": Page("The beam sweeps the sea. A ship turns away from the rocks. You saved them.",
                      [("190", THE_END, "comments")]),
        "drown": Page("The current is too strong. The sea takes you.", [("191", ENDING, "comments")]),
        "dark": Page("Glass crunches underfoot. It is very dark now.",
                     [("109", "Wait", "dark"), ("110", "Climb down to the beach", "beach")]),
        "comments": Page("Thanks for playing! Leave a comment.", []),
    })


def _goblin_market() -> Story:
    return Story("Goblin Market", "gate", {
        "gate": Page("Goblin men cry their fruit at the market gate.",
                     [("201", "Buy a plum", "plum"), ("202", "Open the old chest", "chest"),
                      ("203", "Run home", "home")]),
        "plum": Page("The plum is sweet beyond words. The goblins grin.",
                     [("203", "Run home", "home"), ("204", "Buy another", "hunger")]),
        "hunger": Page("You can think of nothing else, ever again.", [("290", ENDING, "comments")]),
        "home": Page("Your sister waits at the door with a lamp.", [("291", THE_END, "comments")]),
        "chest": Page("An error occurred.", broken=True),
        "comments": Page("Thanks for playing!", []),
    })


def _maze(size: int = 24) -> Story:
    pages = {}
    for i in range(size):
        links = []
        for k, j in enumerate((2 * i + 1, 2 * i + 2, (i * 7 + 3) % size)):
            if j < size and j != i and (k < 2 or i % 3 == 0):
                links.append((f"3{i:02d}{k}", f"Take passage {k + 1} from room {i}", f"m{j}"))
        if not links:
            links.append((f"39{i:02d}", ENDING, "comments"))
        pages[f"m{i}"] = Page(f"Room {i} of the maze. Torches flicker on damp stone walls.", links)
    pages["comments"] = Page("Thanks for playing!", [])
    return Story("The Maze", "m0", pages)


def default_stories() -> dict[str, Story]:
    return {"1": _lighthouse(), "2": _goblin_market(), "3": _maze(),
            "5": Story("Unpublished", "x", {"x": Page("This story is not available.", broken=True)}),
            "6": Story("Malformed", "x", {"x": Page("Half a page", [("601", "Go", "x")])}),
            "66": _maze(4)}


def render_page(story_id: str, story: Story, page: Page, viewstate: str) -> str:
    if page.broken:
        return f"<html><body><h1>{html.escape(page.text)}</h1><p>Please try again later.</p></body></html>"
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br />')}</p>\n" for p in page.text.split("\n\n"))
    links = "".join(f'<li><a href="#" onclick="PostBack(\'FollowLink\',\'{lid}\');return false;">'
                    f"{html.escape(text)}</a></li>\n" for lid, text, _ in page.links)
    inventory = ("<!-- Inventory -->\n<div class=\"inventory\"><h3>Inventory</h3><ul>"
                 + "".join(f"<li>{html.escape(item)}</li>" for item in page.inventory) + "</ul></div>\n"
                 if page.inventory else "")
    end_main = "" if story_id == "6" else "<!-- END MAIN -->"
    return f"""<!DOCTYPE html>
<html><head><title>{html.escape(story.title)} - ChooseYourStory.com</title></head>
<body>
<form method="post" action="default.aspx?StoryId={story_id}" id="pbForm">
<input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="{viewstate}" />
<input type="hidden" name="__VIEWSTATEGENERATOR" id="__VIEWSTATEGENERATOR" value="CA0B0334" />
<input type="hidden" name="pbAction" id="pbAction" value="" />
<input type="hidden" name="pbValue" id="pbValue" value="" />
<div id="gameWrapper">
<h1><span id="_storyTitle">{html.escape(story.title)}</span></h1>
<div class="gameText">
<!-- BEGIN MAIN -->
{paragraphs}{end_main}
</div>
<!-- Links -->
<ul class="gameLinks">
{links}</ul>
{inventory}</div>
</form>
</body></html>
"""


@dataclass
class Session:
    story_id: str
    page: str
    viewstate: str
    fresh: bool


class CysTestSite:
    """The site in a background thread: `with CysTestSite() as site: site.base_url ...`."""

    def __init__(self, stories: dict[str, Story] | None = None, *, transient: dict | None = None,
                 retry_after: str = "1"):
        self.stories = stories or default_stories()
        # (story, link) -> statuses to answer before the real page, each once (per site instance).
        self.transient = {("1", "107"): [429], ("1", "106"): [500]} if transient is None else transient
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.log: list[tuple[str, str, str | None, int]] = []  # (method, story id, link id, status)
        self.times: list[float] = []  # time.monotonic() of each log entry
        self.violations: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    # -- what tests look at ------------------------------------------------------------------------------
    def link_posts(self, story_id: str | None = None, ok_only: bool = True) -> Counter:
        """POSTs per (story, link) id, by default only the ones answered 200."""
        return Counter((s, l) for m, s, l, status in self.log
                       if m == "POST" and (story_id is None or s == story_id) and (status == 200 or not ok_only))

    def count(self, method: str | None = None, story_id: str | None = None, status: int | None = None) -> int:
        return sum(1 for m, s, _, st in self.log if (method is None or m == method)
                   and (story_id is None or s == story_id) and (status is None or st == status))

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()
            self.times.clear()
            self.violations.clear()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> "CysTestSite":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "CysTestSite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the protocol --------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, cookie: str | None, form: dict):
        """(status, headers, body, new session cookie or None)."""
        if path == "/robots.txt":
            return 200, {}, "User-agent: *\nDisallow: /private/\nDisallow: /story/viewer/default.aspx?StoryId=66\n", None
        if path != "/story/viewer/default.aspx":
            return 404, {}, "<html><body>Not found</body></html>", None
        story_id = (query.get("StoryId") or [""])[0]
        story = self.stories.get(story_id)
        link_id = form.get("pbValue") if method == "POST" else None
        with self.lock:
            if story is None:
                return self._answer(method, story_id, link_id, 404, "<html><body>Story not found</body></html>")
            if method == "GET":
                sid = cookie if cookie in self.sessions else secrets.token_hex(8)
                session = self.sessions[sid] = Session(story_id, story.start, secrets.token_urlsafe(12), True)
                page = story.pages[session.page]
                return self._answer(method, story_id, None, 200,
                                    render_page(story_id, story, page, session.viewstate), sid)
            session = self.sessions.get(cookie or "")
            problem = self._protocol_problem(session, story_id, story, form)
            if problem:
                self.violations.append(problem)
                return self._answer(method, story_id, link_id, 400, f"<html><body>{problem}</body></html>")
            pending = self.transient.get((story_id, link_id))
            if pending:
                status = pending.pop(0)
                headers = {"Retry-After": self.retry_after} if status == 429 else {}
                return self._answer(method, story_id, link_id, status, "<html><body>busy</body></html>",
                                    headers=headers)
            target = next(t for lid, _, t in self._story_links(story) if lid == link_id)
            session.page, session.viewstate, session.fresh = target, secrets.token_urlsafe(12), False
            return self._answer(method, story_id, link_id, 200,
                                render_page(story_id, story, story.pages[target], session.viewstate))

    @staticmethod
    def _story_links(story: Story):
        return [link for page in story.pages.values() for link in page.links]

    def _protocol_problem(self, session, story_id, story, form) -> str | None:
        if session is None:
            return "POST without a session cookie (GET the story first)"
        if session.story_id != story_id:
            return f"session is on story {session.story_id}, not {story_id}"
        if form.get("__VIEWSTATE") != session.viewstate:
            return "invalid __VIEWSTATE (not the one the last page gave)"
        if form.get("__VIEWSTATEGENERATOR") != "CA0B0334" or form.get("pbAction") != "FollowLink":
            return "form fields missing or pbAction is not FollowLink"
        link_id = form.get("pbValue")
        if link_id not in {lid for lid, _, _ in self._story_links(story)}:
            return f"link {link_id} is not a link of story {story_id}"
        shown = {lid for lid, _, _ in story.pages[session.page].links}
        if not session.fresh and link_id not in shown:
            return f"link {link_id} is not on the shown page and the session was not reset"
        return None

    def _answer(self, method, story_id, link_id, status, body, sid=None, headers=None):
        self.log.append((method, story_id, link_id, status))
        self.times.append(time.monotonic())
        return status, headers or {}, body, sid


def _handler_for(site: CysTestSite):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def _serve(self, method: str):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            cookies = SimpleCookie(self.headers.get("Cookie") or "")
            cookie = cookies["ASP.NET_SessionId"].value if "ASP.NET_SessionId" in cookies else None
            status, headers, text, sid = site.handle(method, parts.path, parse_qs(parts.query), cookie, form)
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            if sid:
                self.send_header("Set-Cookie", f"ASP.NET_SessionId={sid}; path=/; HttpOnly")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

    return Handler


def write_snapshot(out_dir, story_ids=("1", "2")) -> None:
    """Crawl stories of a fresh site into a page cache folder (how tests/data/cys_snapshot was made)."""
    from scraping.crawler import CrawlSettings, crawl_stories
    from scraping.http_client import HttpClient
    from scraping.page_cache import PageCache

    with CysTestSite(transient={}) as site, PageCache(out_dir) as cache:
        crawl_stories(list(story_ids), cache, CrawlSettings(site.base_url), HttpClient(delay=0))


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--snapshot"]:  # python -m tests.helpers.cys_test_site --snapshot tests/data/cys_snapshot
        write_snapshot(sys.argv[2])
        sys.exit(0)
    with CysTestSite() as running:
        print(running.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
