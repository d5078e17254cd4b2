"""The chooseyourstory.com story viewer, as a browserless client sees it: URLs, page parsing, the postback form.

A viewer page (`GET {base}/story/viewer/default.aspx?StoryId=<id>`, or the answer to a postback) holds:

    <span id="_storyTitle">Title</span>
    <form id="pbForm"> hidden inputs: __VIEWSTATE..., pbAction, pbValue </form>
    <!-- BEGIN MAIN --> page text <!-- END MAIN -->
    <!-- Links --> <ul><li><a onclick="...PostBack('FollowLink','<linkId>')...">choice</a></li></ul>
    <!-- Inventory --> <ul><li>item</li></ul>   (optional)

Following a choice is a POST of every `#pbForm` input plus pbAction=FollowLink, pbValue=<linkId>.
This module only turns HTML into data and back; fetching lives in http_client/crawler.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from bs4 import BeautifulSoup, Comment

from adventure.errors import GamioError
from adventure.text import normalize_action, normalize_text

VIEWER_PATH = "/story/viewer/default.aspx"
DEFAULT_ENDING_LINKS = (
    "End Game and Leave Comments",
    "The End! (leave comments on game)",
    "Click here to End the Game and Leave Comments",
)

_BEGIN_MAIN = re.compile(r"<!--\s*BEGIN MAIN\s*-->", re.I)
_END_MAIN = re.compile(r"<!--\s*END MAIN\s*-->", re.I)
_LINKS = re.compile(r"<!--\s*Links\s*-->", re.I)
_INVENTORY = re.compile(r"<!--\s*Inventory\s*-->", re.I)
_POSTBACK = re.compile(r"PostBack\(\s*['\"]FollowLink['\"]\s*,\s*['\"]([^'\"]+)['\"]\s*\)")
_BLOCKS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "table", "ul", "ol")


class PageError(GamioError):
    """A page that is not a usable viewer page (no form, no main text, not HTML...)."""


@dataclass(frozen=True)
class Link:
    link_id: str
    text: str


@dataclass(frozen=True)
class ViewerPage:
    title: str
    text: str
    links: tuple[Link, ...]
    inventory: tuple[str, ...]
    form: tuple[tuple[str, str], ...]  # (name, value) of every #pbForm input, in page order

    @property
    def key(self) -> str:
        """Identity of the page *as a story state*: its text and where it leads.

        The raw HTML of one page differs between visits (the ASP.NET view state changes), so merges and loops
        are recognised by this key instead.
        """
        payload = "\x1e".join([self.text, *(f"{l.link_id}\x1f{l.text}" for l in self.links)])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def link_ids(self) -> set[str]:
        return {link.link_id for link in self.links}


def viewer_url(base_url: str, story_id: str | int) -> str:
    return f"{base_url.rstrip('/')}{VIEWER_PATH}?{urlencode({'StoryId': str(story_id)})}"


def is_ending_link(text: str, ending_links) -> bool:
    """Ending links ("End Game and Leave Comments"...) lead to the comment form, not to story text."""
    wanted = normalize_action(text).casefold()
    return any(wanted == normalize_action(e).casefold() for e in ending_links)


def follow_link_form(page: ViewerPage, link_id: str) -> dict[str, str]:
    """The POST body that follows `link_id` from the state `page` was served in."""
    data = dict(page.form)
    data["pbAction"] = "FollowLink"
    data["pbValue"] = str(link_id)
    return data


def _html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment, keeping line breaks and paragraphs (the site's layout)."""
    soup = BeautifulSoup(fragment, "html.parser")
    for node in soup(["script", "style"]):
        node.decompose()
    for node in soup.find_all(string=lambda s: isinstance(s, Comment)):
        node.extract()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    return normalize_text(soup.get_text())


def _section(html: str, start: re.Pattern, *ends: re.Pattern) -> str | None:
    """The raw HTML after the `start` marker up to the first of `ends` (or the end), None if no marker."""
    match = start.search(html)
    if not match:
        return None
    rest = html[match.end():]
    cut = min((m.start() for m in (e.search(rest) for e in ends) if m), default=len(rest))
    return rest[:cut]


def parse_viewer_page(html: str, where: str = "page") -> ViewerPage:
    """Parse one viewer page; PageError names what is missing (`where` says which page, for the message)."""
    if not isinstance(html, str) or "<" not in html:
        raise PageError(f"{where}: not an HTML page")
    soup = BeautifulSoup(html, "html.parser")
    form = soup.find("form", id="pbForm")
    if form is None:
        raise PageError(f"{where}: no <form id=\"pbForm\"> (not a story viewer page, or the story is unavailable)")
    main = _section(html, _BEGIN_MAIN, _END_MAIN)
    if main is None or not _END_MAIN.search(html):
        raise PageError(f"{where}: malformed page, no text between <!-- BEGIN MAIN --> and <!-- END MAIN -->")

    title_node = soup.find(id="_storyTitle")
    title = normalize_text(title_node.get_text()) if title_node else ""

    links: list[Link] = []
    links_html = _section(html, _LINKS, _INVENTORY, _BEGIN_MAIN)
    if links_html is not None:
        for anchor in BeautifulSoup(links_html, "html.parser").find_all("a"):
            match = _POSTBACK.search(" ".join([anchor.get("onclick") or "", anchor.get("href") or ""]))
            if match:
                links.append(Link(link_id=match.group(1), text=normalize_action(anchor.get_text())))

    inventory: tuple[str, ...] = ()
    inventory_html = _section(html, _INVENTORY, _LINKS, _BEGIN_MAIN)
    if inventory_html is not None:
        items = BeautifulSoup(inventory_html, "html.parser").find_all("li")
        inventory = tuple(t for t in (normalize_text(li.get_text()) for li in items) if t)

    fields = tuple((str(i.get("name")), str(i.get("value") or "")) for i in form.find_all("input") if i.get("name"))
    return ViewerPage(title=title, text=_html_to_text(main), links=tuple(links), inventory=inventory, form=fields)
