"""Property-based fuzzing of every metadata parser: any input gives a result or the parser's own error.

Bounded here (the ``fuzz`` profile: 40 examples per target, part of the default run); for a longer
campaign run ``HYPOTHESIS_PROFILE=fuzz-long python -m pytest -m fuzz`` (2,000 examples per target).
A crash found this way becomes a regression test below (``@example``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cloudlulc_edge.errors import ModelCardError, PairingError, ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.s1_calibration import read_calibration, read_noise
from cloudlulc_edge.io.s1_metadata import read_s1_metadata
from cloudlulc_edge.io.s2_safe import read_s2_metadata
from cloudlulc_edge.models.card import ModelCard
from cloudlulc_edge.pairing import read_plan
from tests.conftest import shared_data

settings.register_profile("fuzz", max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz-long", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))
pytestmark = pytest.mark.fuzz

S2 = "s2-l2a-safe/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
S1 = "s1-grd-safe/S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"

# Mutations of a real file: cut it, overwrite a span with arbitrary bytes, or splice text in.
mutations = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1), st.binary(max_size=0)),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(
        [b"<", b"</", b"&", b"&amp;", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"]]>", b"\x00", b"<![CDATA[", b"\xff\xfe",
         b"<x>", b"NaN", b"-1e999", b"  ", b'"'])),
)  # fmt: skip


def _mutate(data: bytes, mutation: tuple[str, float, bytes]) -> bytes:
    kind, where, payload = mutation
    i = int(where * len(data))
    if kind == "cut":
        return data[:i]
    if kind == "overwrite":
        return data[:i] + payload + data[i + len(payload) :]
    return data[:i] + payload + data[i:]


def _metadata_copy(src: Path, dest: Path) -> Path:
    """The product's XML files only (the parsers under test never read pixels)."""
    for path in src.rglob("*"):
        if path.is_file() and path.suffix in (".xml", ".safe"):
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


@pytest.fixture(scope="module")
def s2_copy(tmp_path_factory):
    return _metadata_copy(shared_data(*S2.split("/")), tmp_path_factory.mktemp("s2") / Path(S2).name)


@pytest.fixture(scope="module")
def s1_copy(tmp_path_factory):
    return _metadata_copy(shared_data(*S1.split("/")), tmp_path_factory.mktemp("s1") / Path(S1).name)


def _fuzz_member(product: Path, member: str, mutation: tuple[str, float, bytes], parse) -> None:
    target = product / member
    original = target.read_bytes()
    target.write_bytes(_mutate(original, mutation))
    try:
        with suppress(ProductError):  # the parser's own, specific error: the property holds
            parse(SafeArchive(product))
    finally:
        target.write_bytes(original)


@given(mutation=mutations, member=st.sampled_from(["MTD_MSIL2A.xml", "GRANULE/*/MTD_TL.xml", "manifest.safe"]))
@example(mutation=("overwrite", 0.5, b"<!DOCTYPE x [<!ENTITY a 'b'>]>"), member="MTD_MSIL2A.xml")
def test_s2_metadata_parser(s2_copy, mutation, member):
    (path,) = [p.relative_to(s2_copy).as_posix() for p in s2_copy.glob(member)]
    _fuzz_member(s2_copy, path, mutation, read_s2_metadata)


def _s1_full(archive: SafeArchive) -> None:
    meta = read_s1_metadata(archive)
    for pol in meta.polarisations.values():
        read_calibration(archive, pol.calibration)
        read_noise(archive, pol.noise)


@given(
    mutation=mutations,
    member=st.sampled_from(["manifest.safe", "annotation/s1a-*-vv-*.xml", "annotation/calibration/calibration-*-vv-*.xml",
                            "annotation/calibration/noise-*-vv-*.xml"]),
)  # fmt: skip
def test_s1_metadata_calibration_and_noise_parsers(s1_copy, mutation, member):
    (path,) = [p.relative_to(s1_copy).as_posix() for p in s1_copy.glob(member)]
    _fuzz_member(s1_copy, path, mutation, _s1_full)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _plan_doc(tmp: Path) -> dict:
    return {"format_version": 1, "options": {"input_root": str(tmp)}, "skipped": [], "pairs": [{
        "name": "x", "dt_days": 0.1, "s1_coverage_pct": 100.0, "s1": [],
        "s2": {"kind": "s2_geotiff", "path": str(tmp / "x"), "product_id": "x", "sensing_time": "2017-06-13T10:10:31",
               "footprint": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "attrs": {}}}]}  # fmt: skip


@given(
    path=st.lists(st.sampled_from(["pairs", 0, "s2", "s1", "path", "footprint", "options", "format_version",
                                   "sensing_time", "dt_days", "skipped"]), min_size=1, max_size=4),
    value=json_values,
)  # fmt: skip
@example(path=["pairs", 0, "s2", "path"], value="/etc/shadow")
def test_plan_reader(path, value):
    with tempfile.TemporaryDirectory() as tmp:
        doc = _plan_doc(Path(tmp))
        node = doc
        for key in path[:-1]:
            if (isinstance(node, dict) and key in node) or (
                isinstance(node, list) and isinstance(key, int) and key < len(node)
            ):
                node = node[key]
        if isinstance(node, dict):
            node[path[-1]] = value
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(json.dumps(doc))
        with suppress(PairingError):  # any other exception fails the property
            read_plan(plan_file, [tmp])


@pytest.fixture(scope="module")
def card_doc():
    from cloudlulc_edge.weights import default_checkpoint

    return json.loads((default_checkpoint("cloudlulc_edge") / "model_card.json").read_text())


config_fields = st.sampled_from(
    ["width", "order", "shoi", "use_orm", "mlp_ratio", "spectral_impl", "num_classes", "usmt_heads", "token_dim"]
)


@given(key=st.sampled_from(["variant", "config", "contract", "weights_sha256", "format_version", "training",
                            "package_version"]), value=json_values)  # fmt: skip
@example(key="config", value={"width": "wide"})
def test_model_card_schema(card_doc, key, value):
    doc = {**card_doc, key: value}
    with suppress(ModelCardError):  # any other exception fails the property
        ModelCard.from_dict(doc)


@given(field=config_fields, value=json_values)
@example(field="width", value=True)
@example(field="mlp_ratio", value=1e9)  # found by this test: a card asking for a 35 GB model was built
@example(field="usmt_heads", value=0)
def test_model_card_config_values(card_doc, field, value):
    """A card that passes the schema must also build its model (or the card is refused)."""
    from cloudlulc_edge.models import create_model

    doc = {**card_doc, "config": {**card_doc["config"], field: value}}
    try:
        card = ModelCard.from_dict(doc)
    except ModelCardError:
        return
    fields = ("width", "order", "shoi", "use_orm", "mlp_ratio", "spectral_impl", "num_classes", "usmt_heads",
              "token_dim")  # fmt: skip
    with torch.device("meta"):  # builds every layer without allocating the weights
        create_model(card.variant, **{f: getattr(card.config, f) for f in fields})


@given(doc=json_values)
@example(doc=None)  # found by this test: a card file holding `null` crashed with TypeError
@example(doc=[])
def test_model_card_from_arbitrary_json(doc):
    with suppress(ModelCardError):  # any other exception fails the property
        ModelCard.from_dict(doc)  # type: ignore[arg-type]
