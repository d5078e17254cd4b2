"""Breadth-first crawl of one chooseyourstory story into an AI Dungeon story tree, without a browser.

The site has no page URLs: a choice is a postback of the viewer form with the link's id, in a cookie
session. Link ids belong to the story, so after a GET of the start page (which resets the session) any of
them can be posted; when the session already shows the page that holds the link (or a fresh start page)
the GET is skipped. Each link is followed once, costing at most GET + POST (plus retries).

Every page comes from the raw-page cache when it is there and is stored in it when it is fetched, so the
tree is a pure function of the site graph: an interrupted and resumed crawl builds exactly the tree an
uninterrupted one does, and a cache folder alone (source=snapshot) rebuilds it offline.

Tree shape: the start page is `first_story_block`; each non-ending choice is a node (action = link text,
result = the page it leads to). A page is expanded where it is first reached in BFS order; a choice that
reaches a page already in the tree (a loop back or a merge of branches) becomes a leaf repeating that page's
text, so the tree is finite and every choice the player can make is still in it. Ending links ("End Game
and Leave Comments"...) are never followed: the node holding them is a leaf, i.e. an ending.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from adventure.errors import GamioError
from adventure.trees import StoryNode, StoryTree
from scraping.http_client import FetchError, HttpClient
from scraping.page_cache import START_LINK, PageCache
from scraping.site_protocol import (DEFAULT_ENDING_LINKS, PageError, ViewerPage, follow_link_form,
                                    is_ending_link, parse_viewer_page, viewer_url)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlSettings:
    base_url: str
    ending_links: tuple[str, ...] = DEFAULT_ENDING_LINKS
    max_pages: int = 2000  # pages obtained per story (start page and every link followed)
    max_depth: int = 100  # deepest node (choices from the start page are depth 1)
    language: str = "en"

    def __post_init__(self):
        if self.max_pages < 1 or self.max_depth < 1:
            raise GamioError(f"source.max_pages and source.max_depth must be >= 1 "
                             f"(got {self.max_pages}, {self.max_depth})")


@dataclass
class StoryCrawl:
    story_id: str
    tree: StoryTree | None = None
    error: str | None = None  # why the story failed as a whole (no tree)
    pages: int = 0  # distinct pages (story states) in the tree
    links_followed: int = 0  # distinct links whose target page was obtained
    fetched: int = 0  # pages fetched over the network in this run (the rest came from the cache)
    endings: int = 0  # ending links seen (never followed)
    merges: int = 0  # choices reaching a page already in the tree (loops, merged branches)
    truncated: bool = False  # max_pages / max_depth / missing pages cut the crawl short
    link_failures: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"pages": self.pages, "links_followed": self.links_followed, "fetched": self.fetched,
                "endings": self.endings, "merges": self.merges, "truncated": self.truncated,
                "link_failures": self.link_failures}


class ViewerSession:
    """The live site for one story: GET resets to the start page, POST follows a link from the shown page."""

    def __init__(self, client: HttpClient, base_url: str, story_id: str):
        self.client, self.url, self.story_id = client, viewer_url(base_url, story_id), story_id
        self.shown: ViewerPage | None = None  # the page the server's session state is on
        self.fresh = False  # shown is the start page just served by a GET

    def start(self) -> tuple[str, ViewerPage]:
        return self._show(self.client.get(self.url), f"story {self.story_id} start page", fresh=True)

    def follow(self, link_id: str) -> tuple[str, ViewerPage]:
        if self.shown is None or not (self.fresh or link_id in self.shown.link_ids()):
            self.start()  # reset: after a GET the story accepts any of its link ids
        return self._show(self.client.post(self.url, follow_link_form(self.shown, link_id)),
                          f"story {self.story_id} link {link_id}", fresh=False)

    def _show(self, response, where: str, fresh: bool) -> tuple[str, ViewerPage]:
        """The page the session now shows, parsed; a bad page leaves the state unknown (next follow resets)."""
        self.shown, self.fresh = None, False
        html = self._check(response, where)
        page = parse_viewer_page(html, where)
        self.shown, self.fresh = page, fresh
        return html, page

    @staticmethod
    def _check(response, where: str) -> str:
        if response.status_code == 404:
            raise FetchError(f"{where}: not found (HTTP 404, unknown story?)", 404)
        if response.status_code != 200:
            raise FetchError(f"{where}: HTTP {response.status_code}", response.status_code)
        return response.text


class PageSource:
    """Pages of one story from the cache, else from the live session (None: cache only, as in a snapshot)."""

    def __init__(self, cache: PageCache, story_id: str, session: ViewerSession | None):
        self.cache, self.story_id, self.session = cache, story_id, session
        self.fetched = 0

    def page(self, link_id: str) -> ViewerPage:
        where = f"story {self.story_id} " + ("start page" if link_id == START_LINK else f"link {link_id}")
        html = self.cache.get(self.story_id, link_id)
        if html is not None:
            return parse_viewer_page(html, where)
        if self.session is None:
            raise FetchError(f"{where}: not in the page cache (offline snapshot)")
        # Only pages that parse are cached: a bad one raises here and is tried again by the next run.
        html, page = self.session.start() if link_id == START_LINK else self.session.follow(link_id)
        self.cache.put(self.story_id, link_id, html, self.session.url)
        self.fetched += 1
        return page


def crawl_story(story_id: str, cache: PageCache, settings: CrawlSettings,
                client: HttpClient | None = None) -> StoryCrawl:
    """Crawl (or rebuild from the cache) one story; a failure of the whole story is returned, not raised."""
    story_id = str(story_id)
    crawl = StoryCrawl(story_id)
    session = ViewerSession(client, settings.base_url, story_id) if client is not None else None
    pages = PageSource(cache, story_id, session)
    try:
        crawl.tree = _build_tree(story_id, pages, settings, crawl)
    except (FetchError, PageError) as exc:
        crawl.error = str(exc)
        log.error("story %s failed: %s", story_id, exc)
    crawl.fetched = pages.fetched
    return crawl


def _build_tree(story_id: str, pages: PageSource, settings: CrawlSettings, crawl: StoryCrawl) -> StoryTree:
    root = pages.page(START_LINK)
    url = viewer_url(settings.base_url, story_id)
    tree = StoryTree(tree_id=url, first_story_block=root.text, title=root.title, language=settings.language,
                     source_url=url)
    seen = {root.key}
    targets: dict[str, ViewerPage | None] = {}  # link id -> page it leads to (None: it failed)
    queue: deque[tuple[ViewerPage, list[StoryNode], int]] = deque([(root, tree.children, 0)])
    progress = tqdm(desc=f"story {story_id}", unit="page", leave=False)
    while queue:
        page, siblings, depth = queue.popleft()
        for link in page.links:
            if is_ending_link(link.text, settings.ending_links):
                crawl.endings += 1
                continue
            if depth + 1 > settings.max_depth:
                crawl.truncated = True
                continue
            if link.link_id not in targets:
                if 1 + len(targets) >= settings.max_pages:  # every page obtained counts, start included
                    crawl.truncated = True
                    continue
                try:
                    targets[link.link_id] = pages.page(link.link_id)
                except (FetchError, PageError) as exc:
                    # One broken link loses its branch, not the story (AI Dungeon's trees have nulls there).
                    log.warning("%s", exc)
                    targets[link.link_id] = None
                    crawl.link_failures.append({"link_id": link.link_id, "action": link.text, "reason": str(exc)})
                    crawl.truncated = True
                progress.update(1)
            target = targets[link.link_id]
            if target is None:
                continue
            node = StoryNode(action=link.text, result=target.text)
            siblings.append(node)
            if target.key in seen:
                crawl.merges += 1  # already in the tree: a leaf that repeats the page, never a cycle
            else:
                seen.add(target.key)
                queue.append((target, node.children, depth + 1))
    progress.close()
    crawl.pages = len(seen)
    crawl.links_followed = sum(1 for t in targets.values() if t is not None)
    return tree


def crawl_stories(story_ids, cache: PageCache, settings: CrawlSettings,
                  client: HttpClient | None = None) -> list[StoryCrawl]:
    results = []
    for story_id in story_ids:
        if client is not None:
            client.reset_session()  # a fresh cookie session per story
        result = crawl_story(story_id, cache, settings, client)
        if result.tree is not None:
            log.info("story %s: %d pages, %d links (%d fetched), %d endings, %d merges%s", story_id, result.pages,
                     result.links_followed, result.fetched, result.endings, result.merges,
                     ", truncated" if result.truncated else "")
        results.append(result)
    return results
