"""The package's lazy public names resolve to the real objects."""

import pytest

import agents


def test_public_names_resolve():
    from agents.models import ActorCriticLM
    from agents.policies import TransformerPolicy

    assert agents.ActorCriticLM is ActorCriticLM and agents.TransformerPolicy is TransformerPolicy
    assert set(agents.__all__) >= {"ActorCriticLM", "TransformerPolicy", "process_logits", "build_default_model"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        agents.Nope  # noqa: B018
