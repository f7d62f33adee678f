"""HTTP service settings, from ``FEDREC_*`` environment variables, read once at start-up."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fedrec.server.api.schemas import MAX_BATCH, MAX_K_LIMIT, MAX_LIST_ITEMS, Genre
from fedrec.server.serving import FOLD_IN_WEIGHT


class Settings(BaseSettings):
    """Where the model is and how the service answers."""

    model_config = SettingsConfigDict(env_prefix="FEDREC_", protected_namespaces=())

    model_path: str = Field("runs", description="Run dir, checkpoint dir, or output dir.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_k: int = Field(100, ge=1, le=MAX_K_LIMIT)
    default_k: int = Field(10, ge=1)
    max_liked_items: int = Field(100, ge=1, le=MAX_LIST_ITEMS)
    max_batch: int = Field(
        32, ge=1, le=MAX_BATCH, description="Most cold-start requests in one batch call."
    )
    max_body_bytes: int = Field(
        256 * 1024, ge=1024, description="Larger request bodies are refused (413)."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Larger request headers, in all, are refused (431)."
    )
    max_text_tokens: int = Field(
        256, ge=8, le=512, description="Free text is cut here (the encoder's limit is 512)."
    )
    admin_token: str = Field(
        "", description="Token for admin routes (X-Admin-Token); empty disables them."
    )
    admin_tokens_file: str = Field(
        "",
        description="A file of admin tokens, one a line ('#' comments): each is accepted, "
        "and the file is read again when it changes, so tokens rotate without a restart.",
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests a client (address) may make a minute; 0: no limit."
    )
    rate_limit_burst: int = Field(
        0, ge=0, description="Requests a client may make at once (0: a tenth of the minute's)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (a JSON list; ['*'] for any).",
    )
    extra_genres: list[Genre] = Field(
        default_factory=list,
        max_length=100,
        description="Genres admin-added items may have besides the catalogue's (a JSON list).",
    )
    load_in_background: bool = Field(
        True,
        description="Open the port at once and load the model behind it (/ready says when).",
    )
    reload_interval_s: float = Field(
        0.0, ge=0.0, description="Look for a newer checkpoint this often (0: only on request)."
    )
    signing_key_path: str = Field(
        "",
        description="Ed25519 private key (PEM) that signs item models; empty: a key made for "
        "this process only.",
    )
    device: str = Field("auto", description="Where the encoder runs: auto, cpu, cuda[:N].")
    compute_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Threads each encoder pass and matrix product uses (torch, BLAS); 0: the "
        "libraries' defaults. One keeps requests steady on a busy machine; concurrent "
        "requests use the other cores.",
    )
    encoder_passes: int = Field(
        1,
        ge=1,
        le=64,
        description="Encoder passes that may run at once (each on compute_threads threads); "
        "concurrent texts queued meanwhile share the next pass. More than one helps only "
        "with cores to spare: otherwise one pass over a bigger batch does more.",
    )
    freeze_heap: bool = Field(
        True,
        description="After each load, collect once and keep the model's objects out of later "
        "garbage collections (gc.freeze), so none walks them while requests wait.",
    )
    fold_in_weight: float = Field(
        FOLD_IN_WEIGHT,
        ge=0.0,
        le=1.0,
        description="How much a new user's folded-in vector counts against the item bias "
        "(0: the model's popularity alone; 1: the fold-in alone). Models trained without DP.",
    )
