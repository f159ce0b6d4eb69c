"""PAM's keypoint drawing rule written independently of the engine from its description (see the
facts listed in ``test_pam_geometry.py``), shared by that test and ``benchmarks/bench_maps.py``."""

import math

import cv2
import numpy as np

BASE = [[139, 53, 255], [0, 56, 255], [43, 140, 237], [37, 168, 36], [147, 147, 0], [70, 17, 145]]
CHAINS = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20]]


def pam_rule_drawing(joint_2d, joint_z):
    """An independent drawing of the rule above on a 640x480 canvas."""
    img = np.zeros((480, 640, 3), np.uint8)
    p = np.round(joint_2d).astype(int)
    colour = [tuple(min(c + 35 * (n % 4), 255) for c in BASE[n // 4]) for n in range(21)]
    for n in range(21):
        cv2.circle(img, (int(p[n, 0]), int(p[n, 1])), 3, colour[n], -1)
    limbs = [(chain[j], chain[j + 1]) for chain in CHAINS for j in range(4)]
    ids = list(range(20))
    if joint_z[0] < joint_z[20]:
        ids = ids[::-1]
    for n in ids:
        (ua, va), (ub, vb) = p[limbs[n][0]], p[limbs[n][1]]
        length = math.sqrt((ua - ub) ** 2 + (va - vb) ** 2)
        if not 5 < length < 150:
            continue
        angle = int(math.degrees(math.atan2(va - vb, ua - ub)))
        poly = cv2.ellipse2Poly((int((ua + ub) / 2), int((va + vb) / 2)), (int(length / 2), 6 if n < 4 else 3),
                                angle, 0, 360, 1)
        cv2.fillConvexPoly(img, poly, colour[n])
    return img


def nearest_720(img):
    cols = (np.arange(720) * 640) // 720
    return img[:, cols]
