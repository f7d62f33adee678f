"""Request and response bodies (pydantic)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ErrorCode = Literal[
    "bad_request",
    "invalid_json",
    "unauthorized",
    "admin_disabled",
    "not_found",
    "unknown_item",
    "method_not_allowed",
    "item_exists",
    "trained_item",
    "payload_too_large",
    "unsupported_media_type",
    "validation_error",
    "unknown_genre",
    "text_not_supported",
    "too_many_requests",
    "headers_too_large",
    "internal_error",
    "no_model",
    "loading",
    "reload_failed",
    "model_version_mismatch",
]


class FieldError(BaseModel):
    """Where a request is invalid and why."""

    loc: list[str | int] = Field(description="Path to the field, e.g. ['body', 'k'].")
    msg: str
    type: str = Field(description="Kind of error, e.g. 'missing', 'int_type', 'too_long'.")


class Problem(BaseModel):
    """An error (RFC 9457 problem details), with a stable ``code`` to branch on."""

    type: str = Field(description="'urn:fedrec:problem:' followed by the code.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    code: ErrorCode = Field(description="Stable: clients branch on this, not on the text.")
    detail: str = Field(description="What went wrong and what to do, for a person.")
    request_id: str | None = Field(None, description="The X-Request-ID of the request.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Validation errors (422), at most 20."
    )


class ItemPublic(BaseModel):
    """An item of the catalogue."""

    id: str
    title: str
    genres: list[str]


class ScoredItemPublic(ItemPublic):
    """A recommended item with its score."""

    score: float
    because: str | None = Field(
        None,
        description=(
            "What drove this item: the liked item id whose vector agrees most with it, or "
            "'text: <word>' for the word of the user's text that does; for free text read as "
            "an intent (co-occurrence models), the word whose removal lowers the item's score "
            "most, or 'popularity' when no word raised it."
        ),
    )


class HealthPublic(BaseModel):
    """Liveness and which model is loaded."""

    status: Literal["ok", "loading", "no-model"] = Field(
        description="'ok' (serving), 'loading' (the model is loading), or 'no-model'"
    )
    model_version: str | None = None


class ModelComponent(BaseModel):
    """One part of the served model and what it was computed from."""

    part: str
    source: Literal["private-dp", "private-exact", "public"] = Field(
        description="private-dp: from users' data under the stated DP guarantee; private-exact: "
        "from users' data without DP; public: no user's data (pretrained weights, catalogue)"
    )
    detail: str


class ModelPublic(BaseModel):
    """The served model: version, training metrics and its privacy guarantee."""

    model_version: str
    run_name: str
    round: int
    kind: str
    created_at: str
    n_items: int = Field(description="Items served now: the trained ones and those added since.")
    embedding_dim: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    privacy: dict[str, Any] | None = Field(
        description="Unit, epsilon, delta, mechanism and coverage; null when trained without DP"
    )
    user_privacy: dict[str, Any] | None = Field(
        None,
        description=(
            "The user-level guarantee (unit 'user'): placement (central, local, secagg), "
            "epsilon, delta, accountant, mechanism and coverage; null when user-level DP is "
            "off. 'privacy' is the record-level one (unit 'record')."
        ),
    )
    components: list[ModelComponent] = Field(
        default_factory=list,
        description="Each part of the served model: DP-trained, exact, or public",
    )
    cold_start_fold_in: bool = Field(
        True,
        description=(
            "Whether cold-start answers refine the new user's vector by fold-in on the liked "
            "items. Off for a model trained under DP: its item rows carry noise, which a "
            "fold-in on a few items would fit (docs/benchmarks/coldstart-dp.md)."
        ),
    )
    cold_start_fold_in_weight: float | None = Field(
        None,
        description=(
            "How much the folded-in vector counts against the item bias (the model's learned "
            "popularity) when ranking for a new user; null when fold-in is off."
        ),
    )


# Ids travel in URL paths: URL-unreserved characters only (RFC 3986), starting with a letter
# or digit, so no "/", "..", NUL, whitespace, bidi controls or markup can get in.
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]*$"
MAX_ITEM_ID_CHARS = 64
MAX_CATALOGUE_ID_CHARS = 128
# Titles and genres are one line of printable text: no C0/C1 controls and no bidi
# embeddings, overrides or isolates (which can make text display as something else).
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROLS = r"\x00-\x1f\x7f-\x9f" + _BIDI
LINE_PATTERN = rf"^[^{_CONTROLS}\s]([^{_CONTROLS}]*[^{_CONTROLS}\s])?$"
# A description may also hold line breaks and tabs.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + _BIDI + "]*$"
MAX_TITLE_CHARS = 300
MAX_GENRE_CHARS = 40
MAX_ITEM_GENRES = 10

ItemId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ITEM_ID_CHARS,
        pattern=ITEM_ID_PATTERN,
        description="Letters, digits and . _ ~ -, starting with a letter or digit.",
        examples=["9001"],
    ),
]
# Ids of the trained catalogue come from the data set, so looser than admin-chosen ones.
CatalogueId = Annotated[
    str, Field(min_length=1, max_length=MAX_CATALOGUE_ID_CHARS, examples=["50"])
]
Genre = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_GENRE_CHARS,
        pattern=LINE_PATTERN,
        description="One of the genres the service knows (GET /v1/genres), any case.",
        examples=["Sci-Fi"],
    ),
]


MAX_TEXT_CHARS = 10_000
# Hard caps on every list a request may hold (settings may set lower ones).
MAX_LIST_ITEMS = 1_000
MAX_K_LIMIT = 1_000
MAX_BATCH = 100
MAX_OFFSET = 100_000
MAX_PAGE = 100
MAX_FILTER_GENRES = 50


class RequestBody(BaseModel):
    """A request body: no coercion (``true`` is not 1, ``"5"`` is not 5), no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ColdStartRequest(RequestBody):
    """A new user described by items they like, by free text, or both (not neither)."""

    liked_item_ids: list[CatalogueId] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Items the user likes (at most FEDREC_MAX_LIKED_ITEMS).",
        json_schema_extra={"x-fedrec-limit": "max_liked_items"},
        examples=[["50", "172", "181"]],
    )
    text: str | None = Field(
        None,
        max_length=MAX_TEXT_CHARS,
        description="Free-text interests; cut to the encoder's token limit with a warning.",
        examples=["space opera, witty robots and old-school adventure"],
    )
    k: int | None = Field(
        None,
        ge=1,
        le=MAX_K_LIMIT,
        description="How many items (default FEDREC_DEFAULT_K, at most FEDREC_MAX_K).",
        json_schema_extra={"x-fedrec-limit": "max_k"},
    )
    exclude_item_ids: list[CatalogueId] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS, description="Items never to return."
    )
    genres: list[Genre] = Field(
        default_factory=list,
        max_length=MAX_FILTER_GENRES,
        description="Only recommend items of one of these genres.",
    )

    @model_validator(mode="after")
    def _needs_input(self) -> ColdStartRequest:
        if not self.liked_item_ids and not (self.text and self.text.strip()):
            raise ValueError("give liked_item_ids, a non-empty text, or both")
        return self


class RecommendationsPublic(BaseModel):
    """Recommended items, best first, and warnings about the request (e.g. truncation)."""

    model_version: str
    items: list[ScoredItemPublic]
    warnings: list[str] = Field(default_factory=list)


class ItemFields(RequestBody):
    """What an admin says about an item: its text, from which it is placed."""

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS, pattern=LINE_PATTERN)
    genres: list[Genre] = Field(default_factory=list, max_length=MAX_ITEM_GENRES)
    description: str = Field("", max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)


class NewItemRequest(ItemFields):
    """A new item, known only by its text."""

    id: ItemId


class GenresPublic(BaseModel):
    """The genre vocabulary: what ``genres`` filters and admin-added items may name."""

    genres: list[str]


class SimilarPublic(BaseModel):
    """Items similar to one item, most similar first."""

    model_version: str
    item: ItemPublic
    items: list[ScoredItemPublic]


class ReloadPublic(BaseModel):
    """What a reload did."""

    reloaded: bool = Field(description="Whether a newer checkpoint was swapped in.")
    model_version: str | None = Field(description="The version served now.")
    detail: str


class ReadyPublic(BaseModel):
    """Readiness: a model serves."""

    status: Literal["ready"]
    model_version: str


class ItemPagePublic(BaseModel):
    """One page of the catalogue (items in catalogue order)."""

    model_version: str
    total: int = Field(description="Items matching the query, on all pages.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="Where the next page starts; null on the last.")
    items: list[ItemPublic]


class BatchColdStartRequest(RequestBody):
    """Several cold-start requests answered in one call."""

    requests: list[ColdStartRequest] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Each one as for POST /v1/recommendations/cold-start (at most "
        "FEDREC_MAX_BATCH).",
        json_schema_extra={"x-fedrec-limit": "max_batch"},
    )


class BatchEntryPublic(BaseModel):
    """The answer to one request of a batch: recommendations, or why there are none."""

    items: list[ScoredItemPublic] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: Problem | None = Field(None, description="Set when this one request was refused.")


class BatchRecommendationsPublic(BaseModel):
    """One answer per request of the batch, in order."""

    model_version: str
    results: list[BatchEntryPublic]


class SignaturePublic(BaseModel):
    """A detached signature of an artifact's bytes."""

    algorithm: Literal["Ed25519"]
    key_id: str = Field(description="Names the key (GET /v1/signing-key) that made it.")
    value: str = Field(description="The 64-byte signature, base64.")


class ItemModelManifest(BaseModel):
    """What to check a downloaded item model against."""

    format: str
    model_version: str
    sha256: str = Field(description="SHA-256 of the artifact's bytes (also its ETag).")
    size_bytes: int
    n_items: int
    embedding_dim: int
    signature: SignaturePublic


class SigningKeyPublic(BaseModel):
    """The public key that signs item models: clients pin it."""

    algorithm: Literal["Ed25519"]
    key_id: str
    public_key: str = Field(description="The raw 32-byte public key, base64.")
    pem: str = Field(description="The same key as SubjectPublicKeyInfo PEM.")
    ephemeral: bool = Field(
        description="True when the key was made for this process (FEDREC_SIGNING_KEY_PATH "
        "unset): it changes on restart, so it cannot be pinned."
    )
