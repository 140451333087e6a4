"""Regions of a file (``file#y=0:100``): parsing, physical placement, overlap, training and evaluation use."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedDenoiseLib.errors import ConfigError, InputError
from MedDenoiseLib.evaluation.cases import Case, case_name, check_leakage, load_cases
from MedDenoiseLib.io import read_region, split_region, write_volume
from MedDenoiseLib.io.regions import Region, crop_volume, regions_overlap
from MedDenoiseLib.volume import Geometry, Volume


@pytest.fixture()
def oblique_file(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(4, 20, 30)).astype(np.float32)
    angle = np.deg2rad(30.0)
    direction = (np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0)
    geometry = Geometry(spacing=(0.5, 0.8, 2.0), origin=(10.0, -5.0, 3.0), direction=direction)
    path = tmp_path / "subject.nrrd"
    write_volume(Volume(array, geometry), path)
    return path, array


def test_split_plain_path_has_no_region():
    assert split_region("a/b.nii.gz") == ("a/b.nii.gz", None)


def test_split_parses_axes_and_open_bounds():
    path, region = split_region("a/b.nii.gz#y=0:10, x=5:")
    assert path == "a/b.nii.gz"
    assert region.ranges == ((None, None), (0, 10), (5, None))
    assert region.text() == "y=0:10,x=5:"


@pytest.mark.parametrize("spec", ["y=1:2,q=0:1", "y=0-4", "y=1:2,y=3:4", "y="])
def test_split_refuses_bad_specs_with_the_entry(spec):
    with pytest.raises(InputError, match="region"):
        split_region("f.nrrd#" + spec)


def test_slices_refuse_ranges_outside_the_image():
    with pytest.raises(InputError, match="0 <= start < stop <= 20"):
        Region(((None, None), (5, 25), (None, None))).slices((4, 20, 30))


def test_read_region_keeps_each_voxel_at_its_physical_point(oblique_file):
    path, array = oblique_file
    part = read_region(f"{path}#z=1:3,y=4:12,x=7:")
    np.testing.assert_array_equal(part.array, array[1:3, 4:12, 7:])
    image = sitk.ReadImage(str(path))
    expected = image.TransformIndexToPhysicalPoint((7, 4, 1))
    np.testing.assert_allclose(part.geometry.origin, expected, atol=1e-9)
    assert part.geometry.spacing == pytest.approx(image.GetSpacing())
    assert part.geometry.direction == pytest.approx(image.GetDirection())


def test_crop_volume_leaves_the_source_untouched():
    volume = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    before = volume.array.copy()
    part = crop_volume(volume, (slice(0, 1), slice(1, 3), slice(0, 2)))
    part.array[:] = -1
    np.testing.assert_array_equal(volume.array, before)


def test_overlap_of_disjoint_and_touching_regions():
    shape = (1, 100, 50)
    top, bottom = split_region("f#y=0:60")[1], split_region("f#y=60:")[1]
    assert not regions_overlap(top, bottom, shape)
    assert regions_overlap(top, split_region("f#y=59:70")[1], shape)
    assert regions_overlap(None, bottom, shape)


def test_case_name_includes_region():
    assert case_name("d/tibia.nii.gz#y=1200:") == "tibia_y1200-"
    assert case_name("d/tibia.nii.gz") == "tibia"


def _card(*train):
    return {"training": {"config": {"data": {"train": list(train)}}}}


def test_leakage_allows_disjoint_region_and_refuses_overlap(oblique_file):
    path, _ = oblique_file
    cases = load_cases([f"{path}#y=12:"])
    assert cases[0].clean.shape == (4, 8, 30)
    assert check_leakage(cases, {"model:m": _card(f"/elsewhere/{path.name}#y=0:12")}, exclude=False) == cases
    with pytest.raises(ConfigError, match="training data"):
        check_leakage(cases, {"model:m": _card(f"{path}#y=10:14")}, exclude=False)
    with pytest.raises(ConfigError, match="training data"):
        check_leakage(cases, {"model:m": _card(str(path))}, exclude=False)


def test_leakage_of_whole_file_case(oblique_file):
    path, array = oblique_file
    case = Case("subject", str(path), array, Geometry())
    with pytest.raises(ConfigError):
        check_leakage([case], {"model:m": _card(f"{path}#y=0:2")}, exclude=False)


def test_training_split_treats_regions_of_one_file_as_one_patient():
    from pydantic import ValidationError

    from MedDenoiseLib.training.config import TrainConfig

    raw = {"name": "t", "seed": 1, "model": {"name": "dncnn"},
           "data": {"train": ["x.nii.gz#y=0:100"], "validation": ["x.nii.gz#y=200:"]},
           "noise": {"modality": "xr", "level_range": [0.1, 0.5]}}
    with pytest.raises(ValidationError, match="patient-level split"):
        TrainConfig.model_validate(raw)


def test_provenance_records_the_region(oblique_file):
    from MedDenoiseLib.training.provenance import data_provenance

    path, _ = oblique_file
    record = data_provenance([f"{path}#y=0:12"])[0]
    assert record["region_zyx"] == "y=0:12" and record["sha256"] is not None


def test_hash_in_a_file_name_is_not_a_region():
    assert split_region("scans/scan#2.nii.gz") == ("scans/scan#2.nii.gz", None)
    path, region = split_region("scans/scan#2.nii.gz#x=0:4")
    assert path == "scans/scan#2.nii.gz" and region.ranges[2] == (0, 4)


def test_load_cases_expands_the_home_directory(oblique_file, monkeypatch):
    path, _ = oblique_file
    monkeypatch.setenv("HOME", str(path.parent))
    assert load_cases([f"~/{path.name}#y=0:5"])[0].clean.shape == (4, 5, 30)


def test_projection_ct_noise_of_a_crop_is_the_whole_cross_section_noise():
    """A crop noised in its full slices gets the patient's noise (bigger than a small object's)."""
    import torch

    from MedDenoiseLib.evaluation.runner import simulate_case_noise

    yy, xx = np.mgrid[0:96, 0:96]
    body = np.where((yy - 48) ** 2 + (xx - 48) ** 2 < 44 ** 2, 40.0, -1000.0).astype(np.float32)[None]
    crop = [[0, 1], [32, 64], [32, 64]]
    case = Case("body", "body.nrrd", np.ascontiguousarray(body[:, 32:64, 32:64]), Geometry(), crop,
                context=body.copy())
    in_context = simulate_case_noise(case, "ct", 0.1, 5, fast=False)
    alone = simulate_case_noise(Case("body", "body.nrrd", case.clean.copy(), Geometry()), "ct", 0.1, 5, fast=False)
    assert in_context.shape == case.clean.shape
    assert (in_context - case.clean).std() > 1.5 * (alone - case.clean).std()
    mr = simulate_case_noise(case, "mr", 5.0, 5, fast=False)  # local noise: the context is not used
    from MedDenoiseLib.noise import simulate_noise
    expected = simulate_noise("mr", torch.from_numpy(case.clean), level=5.0, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(mr, expected.numpy())


def test_leakage_counts_calibration_data(oblique_file):
    path, _ = oblique_file
    cases = load_cases([str(path)])
    card = {"uncertainty_calibration": {"data": [str(path)]}}
    with pytest.raises(ConfigError, match="training data"):
        check_leakage(cases, {"model:m": card}, exclude=False)
