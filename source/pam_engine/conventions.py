"""Fixed conventions shared by every stage (docs/design.md, "Conventions"): joint orders, YCB ids, segmentation ids,
and the colours of PAM's condition maps. Other modules import these; nothing here computes."""

from __future__ import annotations

import numpy as np

# --- Hand -------------------------------------------------------------------------------------

#: The 16 MANO joints, in MANO's order (the order of ``pose_m``'s 16 axis-angle triplets).
MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)
#: Parent of each MANO joint (-1 for the wrist); MANO's ``kintree_table[0]``.
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

#: Fingers in MANO's joint order, each with its three MANO joint indices (proximal first).
MANO_FINGERS: dict[str, tuple[int, int, int]] = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}

#: MANO (right hand) vertex ids of the five fingertips, in thumb/index/middle/ring/pinky order.
MANO_TIP_VERTEX_IDS: tuple[int, ...] = (745, 317, 444, 556, 673)

#: Fingers in DexYCB / OpenPose keypoint order.
KEYPOINT_FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")

#: The 21 keypoints in DexYCB / OpenPose order.
KEYPOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{part}" for finger in KEYPOINT_FINGERS for part in ("mcp", "pip", "dip", "tip")
)

#: Index of each DexYCB keypoint in ``concat(mano_joints[16], tips[5])`` where ``tips`` are in
#: thumb/index/middle/ring/pinky order (MANO_TIP_VERTEX_IDS).
KEYPOINT_FROM_MANO: tuple[int, ...] = (
    0,
    13, 14, 15, 16,
    1, 2, 3, 17,
    4, 5, 6, 18,
    10, 11, 12, 19,
    7, 8, 9, 20,
)

#: Parent of each of the 21 keypoints (bones of the keypoint skeleton), -1 for the wrist.
KEYPOINT_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)

#: Keypoint indices of the five fingertips, thumb first.
FINGERTIP_KEYPOINTS: tuple[int, ...] = (4, 8, 12, 16, 20)

#: Length of DexYCB's ``pose_m``: 48 axis-angle values (global + 15 joints) and 3 translation.
POSE_M_DIM = 51

# --- Objects ----------------------------------------------------------------------------------

#: DexYCB object ids (1..21) and the YCB names they stand for.
YCB_CLASSES: dict[int, str] = {
    1: "002_master_chef_can",
    2: "003_cracker_box",
    3: "004_sugar_box",
    4: "005_tomato_soup_can",
    5: "006_mustard_bottle",
    6: "007_tuna_fish_can",
    7: "008_pudding_box",
    8: "009_gelatin_box",
    9: "010_potted_meat_can",
    10: "011_banana",
    11: "019_pitcher_base",
    12: "021_bleach_cleanser",
    13: "024_bowl",
    14: "025_mug",
    15: "035_power_drill",
    16: "036_wood_block",
    17: "037_scissors",
    18: "040_large_marker",
    19: "051_large_clamp",
    20: "052_extra_large_clamp",
    21: "061_foam_brick",
}
YCB_IDS: dict[str, int] = {name: i for i, name in YCB_CLASSES.items()}

# --- Segmentation -----------------------------------------------------------------------------

SEG_BACKGROUND = 0
SEG_HAND = 255
#: Segmentation id given to objects outside the 21 DexYCB ones (custom meshes, other YCB models).
SEG_OTHER_OBJECT = 22

# --- PAM condition-map colours ----------------------------------------------------------------

#: The 150-class ADE20K palette. PAM colours object id k with entry k (1 -> [180,120,120]).
ADE20K_PALETTE = np.array(
    [
        [120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3],
        [120, 120, 80], [140, 140, 140], [204, 5, 255], [230, 230, 230], [4, 250, 7],
        [224, 5, 255], [235, 255, 7], [150, 5, 61], [120, 120, 70], [8, 255, 51],
        [255, 6, 82], [143, 255, 140], [204, 255, 4], [255, 51, 7], [204, 70, 3],
        [0, 102, 200], [61, 230, 250], [255, 6, 51], [11, 102, 255], [255, 7, 71],
        [255, 9, 224], [9, 7, 230], [220, 220, 220], [255, 9, 92], [112, 9, 255],
        [8, 255, 214], [7, 255, 224], [255, 184, 6], [10, 255, 71], [255, 41, 10],
        [7, 255, 255], [224, 255, 8], [102, 8, 255], [255, 61, 6], [255, 194, 7],
        [255, 122, 8], [0, 255, 20], [255, 8, 41], [255, 5, 153], [6, 51, 255],
        [235, 12, 255], [160, 150, 20], [0, 163, 255], [140, 140, 140], [250, 10, 15],
        [20, 255, 0], [31, 255, 0], [255, 31, 0], [255, 224, 0], [153, 255, 0],
        [0, 0, 255], [255, 71, 0], [0, 235, 255], [0, 173, 255], [31, 0, 255],
        [11, 200, 200], [255, 82, 0], [0, 255, 245], [0, 61, 255], [0, 255, 112],
        [0, 255, 133], [255, 0, 0], [255, 163, 0], [255, 102, 0], [194, 255, 0],
        [0, 143, 255], [51, 255, 0], [0, 82, 255], [0, 255, 41], [0, 255, 173],
        [10, 0, 255], [173, 255, 0], [0, 255, 153], [255, 92, 0], [255, 0, 255],
        [255, 0, 245], [255, 0, 102], [255, 173, 0], [255, 0, 20], [255, 184, 184],
        [0, 31, 255], [0, 255, 61], [0, 71, 255], [255, 0, 204], [0, 255, 194],
        [0, 255, 82], [0, 10, 255], [0, 112, 255], [51, 0, 255], [0, 194, 255],
        [0, 122, 255], [0, 255, 163], [255, 153, 0], [0, 255, 10], [255, 112, 0],
        [143, 255, 0], [82, 0, 255], [163, 255, 0], [255, 235, 0], [8, 184, 170],
        [133, 0, 255], [0, 255, 92], [184, 0, 255], [255, 0, 31], [0, 184, 255],
        [0, 214, 255], [255, 0, 112], [92, 255, 0], [0, 224, 255], [112, 224, 255],
        [70, 184, 160], [163, 0, 255], [153, 0, 255], [71, 255, 0], [255, 0, 163],
        [255, 204, 0], [255, 0, 143], [0, 255, 235], [133, 255, 0], [255, 0, 235],
        [245, 0, 255], [255, 0, 122], [255, 245, 0], [10, 190, 212], [214, 255, 0],
        [0, 204, 255], [20, 0, 255], [255, 255, 0], [0, 153, 255], [0, 41, 255],
        [0, 255, 204], [41, 0, 255], [41, 255, 0], [173, 0, 255], [0, 245, 255],
        [71, 0, 255], [122, 0, 255], [0, 255, 184], [0, 92, 255], [184, 255, 0],
        [0, 133, 255], [255, 214, 0], [25, 194, 194], [102, 255, 0], [92, 0, 255],
    ],
    dtype=np.uint8,
)
SEG_HAND_COLOR = np.array([92, 0, 255], dtype=np.uint8)
SEG_BACKGROUND_COLOR = np.array([0, 0, 0], dtype=np.uint8)

#: Base colour of each finger's chain in the hand-keypoint map (thumb, index, middle, ring,
#: little, and a sixth used by PAM's palette for the palm), brightened by 35*(i % 4) along it.
KEYPOINT_FINGER_COLORS = np.array(
    [[139, 53, 255], [0, 56, 255], [43, 140, 237], [37, 168, 36], [147, 147, 0], [70, 17, 145]],
    dtype=np.int32,
)
