"""The plain budget (engine `none`, the article's view): memory x util - weights - reserve, no blocks."""

from __future__ import annotations

from kvplan.budget import plain_budget
from kvplan.capacity import capacity
from kvplan.deployment import Deployment
from kvplan.engines import EngineSettings, Scenario
from kvplan.hardware import GPU


def scenario(dep: Deployment, gpu: GPU | None, util: float | None, settings: EngineSettings, seq: int, batch: int,
             replicas: int, reserve: int = 0, kv_memory: int | None = None) -> Scenario:
    util = 0.9 if util is None else util
    memory = settings.total_bytes or (gpu.memory_bytes if gpu else None)
    budgets = [plain_budget(memory, util, s.weights_bytes, reserve, kv_memory) for s in dep.stages]
    context = settings.max_model_len or dep.model.max_context
    return Scenario(gpu, util, tuple(budgets), capacity(dep, budgets, seq, batch, replicas, context))
