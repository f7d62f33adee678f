"""What each part of a served model was computed from: DP-trained, exact, or public.

A co-occurrence model mixes a DP release with public parts (the pretrained encoder, the
catalogue's text): an integrator deciding what to trust, or what a guarantee covers, needs
to know which is which (``GET /v1/model``'s ``components``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fedrec.shared.models.cooccurrence import ITEM_PRIOR
from fedrec.shared.models.initial import USER_HEAD_W

ENCODER = "the pretrained all-MiniLM-L6-v2 encoder (public weights, not trained here)"


def _private(manifest: Mapping[str, Any]) -> tuple[str, str]:
    """The source label and detail of what was computed from users' data."""
    user, record = manifest.get("user_privacy"), manifest.get("privacy")
    guarantees = [
        f"{g['unit']}-level (ε {g['epsilon']:.2f}, δ {g['delta']:.2g})" for g in (user, record) if g
    ]
    if guarantees:
        return "private-dp", "covered by " + " and ".join(guarantees) + " DP"
    return "private-exact", "computed from users' data without DP: no guarantee covers it"


def components(manifest: Mapping[str, Any], tensors: Collection[str]) -> list[dict[str, str]]:
    """Each served part, where it came from and what covers it."""
    source, detail = _private(manifest)
    out = []
    if manifest.get("kind") == "cooccurrence":
        out.append(
            {
                "part": "item factors, collaborative part",
                "source": source,
                "detail": f"from the one release of every user's co-occurrence; {detail}",
            }
        )
        if USER_HEAD_W in tensors:
            out += [
                {
                    "part": "item factors, content part",
                    "source": "public",
                    "detail": f"the catalogue's item texts through {ENCODER}",
                },
                {
                    "part": "text head",
                    "source": source,
                    "detail": "fitted from public item texts to the released factors "
                    f"(post-processing); {detail}",
                },
            ]
        if ITEM_PRIOR in tensors:
            out.append(
                {
                    "part": "item popularity for new users (free text, liked items)",
                    "source": source,
                    "detail": f"the released sum's row sums (post-processing); {detail}",
                }
            )
    else:
        out.append(
            {
                "part": "item factors and biases",
                "source": source,
                "detail": f"trained in federated rounds; {detail}",
            }
        )
        if USER_HEAD_W in tensors:
            out.append(
                {
                    "part": "text heads",
                    "source": source,
                    "detail": f"trained with the factors; {detail}",
                }
            )
    if USER_HEAD_W in tensors:
        out.append({"part": "text encoder", "source": "public", "detail": ENCODER})
    out.append(
        {"part": "catalogue", "source": "public", "detail": "item ids, titles, genres and texts"}
    )
    return out
