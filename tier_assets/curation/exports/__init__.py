"""Training-stage exports: sample tiers x domains to a token budget, write shards and a manifest.

Each tier feeds a stage (pre-training from L1 + L2, decay from the top of L2 + L3,
SFT from L3 Q&A and dialogues + L4 definitions, RAG from the L4 index). ``spec``
says what a stage gets, ``select`` which records, ``chat`` how SFT records are
formed, ``shards`` how they are written and accounted for, ``export`` runs one
stage; docs/decisions.md (ADR 13) explains the choices.
"""

from tier_assets.curation.exports.chat import Unformattable, chat_messages
from tier_assets.curation.exports.export import export_stage
from tier_assets.curation.exports.shards import Manifest, file_sha256
from tier_assets.curation.exports.spec import STAGES, StageSpec, default_spec, estimate_tokens

__all__ = [
    "STAGES",
    "Manifest",
    "StageSpec",
    "Unformattable",
    "chat_messages",
    "default_spec",
    "estimate_tokens",
    "export_stage",
    "file_sha256",
]
