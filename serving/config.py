"""The serving config: every key, its default and its meaning (configs/serving.yaml lists only the groups).

    python -m serving model=<tiny|best|folder|hub id> host=127.0.0.1 port=5000 [paths.artifacts=<dir>]
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from omegaconf import MISSING, DictConfig

from adventure.config import PathsConfig, TranslationConfig, compose, setting
from adventure.generation import GenerationSettings, preset_names

DEFAULT_WORLD = ("Вы стоите на опушке старого леса. Позади догорает деревня, впереди темнеет тропа, а в кармане у "
                 "вас лишь медный ключ и письмо без подписи.")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def host_problem(host: str) -> str | None:
    """An IP address, or a host name that is not all digits and dots (999.1.1.1 is a broken address, not a name)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if re.fullmatch(r"[\d.]+", host) or not _HOSTNAME.match(host):
        return "is neither an IP address nor a host name"
    return None


DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(db: str) -> bool:
    return str(db).startswith(DATABASE_URL_SCHEMES)


def db_problem(path: str) -> str | None:
    """A SQLite file that can be created, or a postgresql://user@host:port/name URL."""
    if is_database_url(path):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(str(path))
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            return f"is not a valid PostgreSQL URL ({exc})"
        return None if parts.hostname or parts.path.strip("/") else "names no host and no database"
    path = Path(path).expanduser()
    if path.is_dir():
        return "is a folder; give the SQLite file to use"
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        return f"cannot be created: {blocking} is a file, not a folder"
    return None


def addresses_problem(addresses) -> str | None:
    bad = []
    for address in addresses:
        try:
            ipaddress.ip_network(str(address), strict=False)
        except ValueError:
            bad.append(address)
    return f"not IP addresses or networks: {bad}" if bad else None


@dataclass
class QueueConfig:
    max_size: int = setting(64, ge=1, help="accepted jobs waiting for the worker; beyond it POST gets 429 + Retry-After")
    max_batch: int = setting(8, ge=1, help="jobs generated together in one batch; 1 = the seed's sequential queue")
    concurrent_batches: Optional[int] = setting(None, ge=1, help="batches generated at once, each by its own worker "
                                                               "thread (continuous batching: a turn that arrives "
                                                               "mid-generation joins it at the next step); null: "
                                                               "8 for engines that batch continuously (vllm, "
                                                               "openai), 1 for hf and ct2 (one batch at a time)")


@dataclass
class LimitsConfig:
    max_action_chars: int = setting(500, ge=1, help="longer actions get 413")
    max_world_chars: int = setting(4000, ge=1, help="longer worlds get 413 (the prompt budget would cut them)")
    max_body_bytes: int = setting(65536, ge=1024, help="larger request bodies get 413 (every route but import)")
    max_import_bytes: int = setting(8 * 2**20, ge=1024, help="POST /api/games/import takes a JSON export up to this "
                                                             "size (413 beyond): a long game with edited replies "
                                                             "exports far more than max_body_bytes")
    max_wait_s: float = setting(30.0, ge=0, help="cap of GET /api/jobs/<id>?wait=")
    max_new_tokens: int = setting(300, ge=1, help="the longest reply a player may ask for (max_new_tokens of a turn "
                                                  "or PATCH; also at most half the model's context)")
    max_variants_per_turn: int = setting(50, ge=2, help="variants one turn may hold (retries, edited replies, "
                                                        "imports); beyond: 413 (nothing is dropped)")
    # Per client (the remote address; see trusted_proxies): abuse and fairness (serving/limits.py).
    max_connections_per_client: int = setting(32, ge=1, help="open connections one address may hold (python -m "
                                                             "serving; the trusted proxies are exempt): more are "
                                                             "closed at once, so one client cannot take them all")
    header_timeout_s: float = setting(10.0, gt=0, help="a connection must send its request line and headers "
                                                       "within this long (python -m serving): a client trickling "
                                                       "header lines is closed")
    games_per_minute: int = setting(10, ge=1, help="new games a client may create per minute (429 + Retry-After)")
    turns_per_minute: int = setting(30, ge=1, help="turns and retries a client may send per minute (429)")
    tools_per_minute: int = setting(300, ge=1, help="token counts (/api/extra/tokencount), context views and steering "
                                                    "PATCHes a client may send per minute, a bucket of their own "
                                                    "(the play page's context panel asks as the player types)")
    max_queued_per_client: int = setting(4, ge=1, help="a client's jobs queued or running at once: its share of "
                                                       "the shared queue (429 beyond)")
    max_long_polls: int = setting(32, ge=0, help="?wait= long-polls held at once, in total; must stay below "
                                                 "`threads` so that /healthz and the page always get a thread. "
                                                 "The excess is answered at once with the job's current state")
    max_long_polls_per_client: int = setting(4, ge=0, help="long-polls one client may hold at once")
    trusted_proxies: List[str] = setting([], check=addresses_problem,
                                         help="reverse proxies (IPs or networks) whose X-Forwarded-For names the "
                                              "client; empty: the client is the TCP peer")


@dataclass
class StorageConfig:
    checkpoint_interval_s: float = setting(5.0, gt=0, help="while turns are written, the WAL is checkpointed into "
                                                           "gamio.sqlite at least this often (and at once when the "
                                                           "queue is idle), so a copy of that file alone holds "
                                                           "every turn finished more than this long ago")
    lease_s: float = setting(30.0, gt=0, help="PostgreSQL: a worker's claim on a running job lapses this long after "
                                              "its process last renewed it (every third of it); then another "
                                              "process takes the job over (a process killed mid-turn loses nothing)")


@dataclass
class GamesConfig:
    expire_after_days: Optional[float] = setting(30.0, gt=0, help="games nothing touched (no turn, undo or retry) "
                                                                  "for this long are deleted with their turns and "
                                                                  "jobs; never one with a pending job; null: never")
    expire_every_s: float = setting(3600.0, gt=0, help="how often expiry runs (also once at start)")


def presets_problem(names) -> str | None:
    unknown = [n for n in names if n not in preset_names()]
    return f"unknown preset(s) {unknown}; choose from {preset_names()}" if unknown else None


@dataclass
class SteeringConfig:
    world_info_scan_turns: int = setting(4, ge=0, help="world-info keys are looked for in the last K turns and the "
                                                       "new action")
    world_info_share: float = setting(0.25, gt=0, le=1, help="share of the context world info may take")
    max_result_chars: int = setting(4000, ge=1, help="an edited reply may be this long (413 beyond)")


@dataclass
class ArenaConfig:
    models: List[str] = setting([], help="more models (specs like `model`) loaded beside the main one; games "
                                         "created with {\"arena\": true} get blind two-model turns")
    rate: float = setting(0.5, ge=0, le=1, help="share of an arena game's turns that are blind comparisons")


@dataclass
class ScenariosConfig:
    """Ready-made openings (GET /api/scenarios; serving/game/scenarios.py)."""
    corpus: bool = setting(True, help="offer the embedded corpus' stories (data/sample/stories) as scenarios")
    folder: Optional[str] = setting(None, help="an operator's folder of scenarios: <id>.json (a story tree, or "
                                               "{title, world}) or <id>.txt (title line, then the world)")


@dataclass
class ApiConfig:
    """The OpenAI- and Kobold-compatible endpoints (serving/compat.py)."""
    keys: List[str] = setting([], help="Bearer keys that open /v1/* and /api/v1|extra/*; empty: open, like the "
                                       "game API")
    max_tokens: int = setting(512, ge=1, help="cap of max_tokens / max_length of one request")
    max_n: int = setting(4, ge=1, le=16, help="cap of n (completions per request)")
    cors_origins: List[str] = setting([], help="web origins whose pages may call these routes from a browser (e.g. "
                                               "https://lite.koboldai.net; \"*\": any); empty: none, so no other "
                                               "site can use the model through a player's browser")


@dataclass
class ServingConfig:
    paths: PathsConfig = MISSING
    generation: GenerationSettings = MISSING
    translation: TranslationConfig = MISSING  # English models: ru->en in, en->ru out
    engine: Any = MISSING  # configs/engine/<name>.yaml
    model: str = setting("tiny", help="tiny | tiny-untrained | best (the newest eval report's recommendation) | "
                                      "a model folder | a hub id")
    language: str = setting("auto", choices=("auto", "ru", "en"),
                            help="ru: the model writes Russian; en: it is wrapped in translation; auto: the eval "
                                 "report's language for model=best, else what the folder says (gamio.json, card, "
                                 "tokenizer)")
    host: str = setting("127.0.0.1", check=host_problem)
    port: int = setting(5000, ge=0, le=65535, help="0: any free port (the log says which)")
    server: str = setting("waitress", choices=("waitress", "flask"), help="flask: Flask's development server")
    threads: int = setting(64, ge=1, help="waitress request threads: every long-poll holds one for up to 30 s")
    seed: Optional[int] = setting(0, help="generation seed of the first batch; batch i uses seed + i (null: unseeded; "
                                          "engine=ct2 seeds its sampler once, at the first batch)")
    history_turns: int = setting(10, ge=0, help="the seed fed the model the player's last 10 actions")
    default_world: str = setting(DEFAULT_WORLD, help="the world of a game created without one")
    queue: QueueConfig = field(default_factory=QueueConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    games: GamesConfig = field(default_factory=GamesConfig)
    db: str = setting("${paths.artifacts}/serving/gamio.sqlite", check=db_problem,
                      help="games, turns and jobs: a SQLite file (WAL; one server process), or "
                           "postgresql://user@host:port/name (several server processes share one game world)")
    presets: List[str] = setting(["gamio", "gamio_sample", "greedy"], check=presets_problem,
                                 help="the generation presets a game may choose (GET /api/presets)")
    steering: SteeringConfig = field(default_factory=SteeringConfig)
    arena: ArenaConfig = field(default_factory=ArenaConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    scenarios: ScenariosConfig = field(default_factory=ScenariosConfig)


def compose_serving_config(overrides: Sequence[str] = ()) -> DictConfig:
    """configs/serving.yaml with command-line style overrides (e.g. ["model=tiny", "port=8000"]), checked."""
    return compose("serving", overrides, ServingConfig)
