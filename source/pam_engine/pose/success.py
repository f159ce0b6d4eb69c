"""The two success rules of a grasp, named apart because they answer different questions.

- :func:`engine_rule` decides whether a Stage I episode is a usable grasp clip (``success`` in a
  trajectory and in ``meta.json``): the object rose more than ``success_height`` and, in the last
  frame, the thumb or the palm and another finger touch it.
- :func:`graspxl_rule` is GraspXL's: the object rose more than 0.1 m and the wrist is within
  0.1 m of its target hT carried along with the object. The RL task rewards and reports it, so
  the policy's figures compare with GraspXL's.

Both are plain numpy on recorded quantities, so every simulator backend applies the same rule.
"""

from __future__ import annotations

import numpy as np

#: GraspXL's thresholds. The target is hT carried along with the object (the wrist where the
#: grasp put it, relative to the object): a world-fixed hT would be 0.2 m below a lifted hand.
GRASPXL_RISE = 0.10
GRASPXL_HAND_DISTANCE = 0.10


def held(contacts: np.ndarray) -> bool:
    """The object is held: at least two fingers touch it, one of them the thumb, or the palm
    (``contacts`` in CONTACT_PARTS order: thumb, index, middle, ring, little, palm)."""
    contacts = np.asarray(contacts, dtype=bool)
    return bool(contacts[:5].sum() >= 2 and (contacts[0] or contacts[5]))


def engine_rule(rise: float, final_contacts: np.ndarray, success_height: float) -> str:
    """The engine's rule: "" when the grasp succeeded, else why it failed."""
    if rise <= success_height:
        return f"object rose {rise:.3f} m, less than {success_height:.2f} m"
    if not held(final_contacts):
        return "object is not held at the end (thumb or palm and another finger must touch it)"
    return ""


def graspxl_rule(rise: float, hand_error: float) -> bool:
    """GraspXL's rule: the object rose > 0.1 m and the wrist is within 0.1 m of its target."""
    return bool(rise > GRASPXL_RISE and hand_error < GRASPXL_HAND_DISTANCE)
