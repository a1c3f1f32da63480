from __future__ import annotations

import json

import pytest
import torch

from cloudlulc_edge.contract import DEFAULT_CONTRACT
from cloudlulc_edge.errors import ModelCardError
from cloudlulc_edge.models import create_model, load_checkpoint, read_card, save_checkpoint
from cloudlulc_edge.models.checkpoint import CARD_FILE, WEIGHTS_FILE, sha256_file


@pytest.fixture
def checkpoint(tmp_path):
    model = create_model("test_tiny")
    save_checkpoint(model, tmp_path / "ckpt", training={"data": "generated"})
    return model, tmp_path / "ckpt"


def _edit_card(directory, **changes):
    path = directory / CARD_FILE
    card = json.loads(path.read_text())
    for key, value in changes.items():
        target = card
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    path.write_text(json.dumps(card))


def test_round_trip_reproduces_outputs(checkpoint):
    model, directory = checkpoint
    loaded, card = load_checkpoint(directory, expected_variant="test_tiny")
    s2, s1 = torch.rand(1, 12, 32, 32), torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(s2, s1), model.eval()(s2, s1))
    assert card.variant == "test_tiny" and card.training == {"data": "generated"}
    assert card.contract == DEFAULT_CONTRACT and card.config == model.config
    assert not any(p.name.endswith(".tmp") for p in directory.iterdir())


def test_card_records_the_contract(checkpoint):
    _, directory = checkpoint
    card = json.loads((directory / CARD_FILE).read_text())
    assert card["contract"]["s2_bands"][8] == "B8A"
    assert card["contract"]["s1_polarisations"] == ["VV", "VH"]
    assert card["contract"]["s1_radiometry"] == "sigma0"
    assert card["contract"]["s1"]["clip_db"] == [[-25.0, 0.0], [-32.5, 0.0]]
    assert card["contract"]["tile_size"] == 512
    assert "reconstruction" in card["description"].lower()
    assert card["weights_sha256"] == sha256_file(directory / WEIGHTS_FILE)


def test_accepts_weights_or_card_path(checkpoint):
    _, directory = checkpoint
    load_checkpoint(directory / WEIGHTS_FILE)
    assert read_card(directory / CARD_FILE).variant == "test_tiny"


def test_missing_card_fails_clearly(checkpoint):
    _, directory = checkpoint
    (directory / CARD_FILE).unlink()
    with pytest.raises(ModelCardError, match=r"model_card\.json") as err:
        load_checkpoint(directory)
    assert err.value.path == directory / CARD_FILE


def test_malformed_card_fails_clearly(checkpoint):
    _, directory = checkpoint
    (directory / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        load_checkpoint(directory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contract.s2_bands": ["B02", "B03", "B04", "B08"]}, "S2 bands"),
        ({"contract.s1_polarisations": ["VH", "VV"]}, "S1 channels"),
        ({"contract.classes": ["a", "b", "c", "d", "e", "f"]}, "classes"),
        ({"contract.s1_radiometry": "gamma0"}, "S1 radiometry"),
        ({"contract.s2.quantification": 1.0}, "S2 normalisation"),  # the readers would feed it ÷10000 data
        ({"contract.s1.clip_db": [[-30.0, 5.0], [-35.0, 0.0]]}, "S1 normalisation"),
        ({"config.num_classes": 7}, "7"),
        ({"config.width": 10}, "width must be a multiple of 4"),
        ({"config.width": 10**6}, "outside"),
        ({"config.colour": "red"}, "colour"),
        ({"format_version": 99}, "format 99"),
        ({"weights_sha256": "xyz"}, "64 lowercase hex"),
    ],
)
def test_card_mismatch_is_refused(checkpoint, change, message):
    _, directory = checkpoint
    _edit_card(directory, **change)
    with pytest.raises(ModelCardError, match=message):
        load_checkpoint(directory)


def test_wrong_variant_is_refused(checkpoint):
    _, directory = checkpoint
    with pytest.raises(ModelCardError, match=r"expected 'cloudlulc_edge'"):
        load_checkpoint(directory, expected_variant="cloudlulc_edge")


def test_replaced_weights_are_refused(checkpoint, tmp_path):
    _, directory = checkpoint
    save_checkpoint(create_model("test_tiny"), tmp_path / "other")
    (directory / WEIGHTS_FILE).write_bytes((tmp_path / "other" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ModelCardError, match="does not match the card"):
        load_checkpoint(directory)


def test_weights_that_do_not_fit_the_card_config_are_refused(checkpoint):
    _, directory = checkpoint
    _edit_card(directory, **{"config.order": 3})  # the weights hold order-2 SHOI/CHOI
    with pytest.raises(ModelCardError, match="do not fit") as err:
        load_checkpoint(directory)
    assert "missing" in str(err.value)


def test_weights_that_are_not_finite_are_refused(checkpoint, tmp_path):
    model, _ = checkpoint
    broken = create_model("test_tiny")
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(p for p in broken.parameters() if p.dim() > 1)[0].fill_(float("nan"))  # a diverged run
    save_checkpoint(broken, tmp_path / "nan")
    with pytest.raises(ModelCardError, match="NaN or infinite"):
        load_checkpoint(tmp_path / "nan")
