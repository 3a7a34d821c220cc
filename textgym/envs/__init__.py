"""Text generation as Gymnasium envs: the single env, the natively batched vector env and the task table."""

from textgym.envs.tasks import TASKS, Task, get_task
from textgym.envs.text_env import TextGenerationEnv
from textgym.envs.vector_env import TextGenerationVectorEnv

__all__ = ["TASKS", "Task", "get_task", "TextGenerationEnv", "TextGenerationVectorEnv"]
