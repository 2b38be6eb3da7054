"""The Ray side: warm actors that train one candidate from a plain spec and return a plain
result. They never pick hyperparameters and never touch the database."""

from workers.ray_executor import RayExecutor, ensure_ray, shutdown_ray

__all__ = ["RayExecutor", "ensure_ray", "shutdown_ray"]
