"""Semantic labels -> DexYCB segmentation ids: the one label -> id mapping of the code base, used
by every capture that renders instance ids with labels (Replicator in Kit, the Isaac Lab camera).

The labels are the ones the engine's USD assets carry (``usd/``): the YCB name of an object,
``hand`` for the hand, ``table`` (background). DexYCB ids: 1-21 YCB objects, 22 other objects,
255 hand, 0 background; prims without a label are background, a label that is not in the
episode is an error.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pam_engine.conventions import SEG_BACKGROUND, SEG_HAND, SEG_OTHER_OBJECT, YCB_IDS
from pam_engine.errors import ConfigError

#: Semantic label of the hand prim (the USD hand asset carries it).
HAND_LABEL = "hand"
#: Labels (and Replicator's reserved ids' labels) that are background (seg id 0).
BACKGROUND_LABELS = frozenset({"BACKGROUND", "UNLABELLED", "background", "table", "ground", "floor", "ground_plane"})


class SegmentationLabelError(ConfigError):
    """An instance id whose label is not in the scene, or an id that is not an integer."""


def label_to_seg_id(label: str, object_names: Sequence[str]) -> int | None:
    """DexYCB id of a semantic label: the hand, an object of the scene (its YCB id, 22 for other
    meshes), background; None when the label is not in the scene."""
    if label == HAND_LABEL:
        return SEG_HAND
    if label in BACKGROUND_LABELS:
        return SEG_BACKGROUND
    if label in object_names:
        return int(YCB_IDS.get(label, SEG_OTHER_OBJECT))
    return None


def label_of(value, semantics: Mapping[str, str]) -> str:
    """The semantic label of one ``idToLabels`` entry: a prim path resolved through ``semantics``
    (nearest labelled ancestor), or a ``{"class": label}`` dict (``instance_segmentation``'s
    ``idToSemantics``, Replicator's semantic annotators)."""
    if isinstance(value, Mapping):
        return str(value.get("class", ""))
    path = str(value)
    if path in BACKGROUND_LABELS:
        return path
    probe = path
    while probe:
        if probe in semantics:
            return str(semantics[probe])
        probe = probe.rsplit("/", 1)[0]
    return ""


def segmentation_lookup(id_to_labels: Mapping, semantics: Mapping[str, str], object_names: Sequence[str]) -> np.ndarray:
    """A table instance id -> DexYCB id (uint8) for ``idToLabels``; an id whose label is not in
    the scene raises :class:`SegmentationLabelError` naming it."""
    ids = {}
    for key, value in id_to_labels.items():
        try:
            instance = int(key)
        except (TypeError, ValueError) as exc:
            raise SegmentationLabelError(f"idToLabels key {key!r}: expected an integer instance id") from exc
        label = label_of(value, semantics)
        # an unlabelled prim (a prop of the user's stage) is background, as in DexYCB; a labelled
        # one must be the hand, background or an object of this episode
        seg = SEG_BACKGROUND if not label else label_to_seg_id(label, object_names)
        if seg is None:
            raise SegmentationLabelError(
                f"segmentation label {label!r} of instance {instance} ({value!r}) is not in the scene "
                f"(expected {HAND_LABEL!r}, a background label or one of the scene's objects {list(object_names)})")
        ids[instance] = seg
    if any(k < 0 for k in ids):
        raise SegmentationLabelError(f"idToLabels: negative instance ids {sorted(k for k in ids if k < 0)}")
    table = np.zeros(max(ids, default=0) + 1, dtype=np.uint8)
    for instance, seg in ids.items():
        table[instance] = seg
    return table
