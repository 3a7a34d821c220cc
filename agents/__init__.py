"""agents: a Transformer actor-critic SB3 policy and TokenPPO, a PPO for huge discrete action spaces."""
