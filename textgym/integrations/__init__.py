"""Bridges from textgym to other libraries' training loops (each module imports its library lazily).

* :mod:`textgym.integrations.trl`: a task's prompts as a ``datasets.Dataset`` plus its reward functions, for
  TRL's ``GRPOTrainer``.
"""
