"""TokenPPO: PPO for text generation with token actions over huge vocabularies (see ``docs/theory.md``).

Public API: :class:`TokenPPO`; the building blocks (GAE, group baselines, KL controllers, losses, the
sequence buffer) live in the submodules for reuse and testing.
"""

from agents.ppo.token_ppo import TokenPPO

__all__ = ["TokenPPO"]
