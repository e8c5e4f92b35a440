"""The model contract, checked over every registered model (`train.models.MODELS`): what a new model must
give for training, the geometry head, fine-tuning and the plots to work with it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from iamchars.config import TrainConfig, registry_names
from iamchars.train.models import MODELS, build_model
from iamchars.train.transfer import freeze, stages


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_keeps_the_contract(name: str) -> None:
    for size in (16, 28, 32):
        model = build_model(name, 47, size)
        assert model(torch.zeros(3, 1, size, size)).shape == (3, 47), f"{name} at {size} px"
    model = build_model(name, 47, 32)
    features, classifier = model.get_submodule("features"), model.get_submodule("classifier")
    assert isinstance(features, nn.Sequential) and isinstance(classifier, nn.Sequential)
    assert isinstance(list(classifier.children())[-1], nn.Linear)
    assert isinstance(next(m for m in features.modules() if isinstance(m, nn.Conv2d)), nn.Conv2d)
    assert freeze(model, 1) == len(stages(model)) >= 2  # fine-tuning freezes it stage by stage
    assert not any(p.requires_grad for p in stages(model)[0].parameters())
    with_geometry = build_model(name, 47, 32, geometry=True)
    assert with_geometry(torch.zeros(2, 1, 32, 32), torch.zeros(2, 4)).shape == (2, 47)


def test_the_config_knows_the_registered_models_and_its_default_is_one() -> None:
    assert registry_names("iamchars.train.models:MODELS") == tuple(MODELS)
    assert TrainConfig().model in MODELS
