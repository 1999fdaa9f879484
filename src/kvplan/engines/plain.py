"""The plain budget (engine `none`, the article's view): memory x util - weights - reserve, no blocks."""

from __future__ import annotations

from dataclasses import dataclass

from kvplan.budget import Budget, plain_budget
from kvplan.capacity import BytePool, LimitedBy, Pool
from kvplan.deployment import Stage
from kvplan.engines.base import Engine, EngineSettings, Setup, Version
from kvplan.errors import InputError
from kvplan.hardware import GPU


@dataclass(frozen=True)
class PlainOptions:
    max_model_len: int | None = None


class Plain(Engine):
    """No engine: the GPU's memory (as nvidia-smi shows it) x util, less the weights and any reserve."""

    name = "none"
    label = "none (plain budget)"
    default_version = ""
    options_class = PlainOptions
    prints_startup = False

    def version(self, settings: EngineSettings) -> Version:
        return (0, 0, 0)

    def options(self, settings: EngineSettings) -> PlainOptions:
        return PlainOptions(settings.max_model_len)

    def device_total(self, gpu: GPU | None, settings: EngineSettings, kv_memory: int | None) -> tuple[int, str]:
        memory = settings.total_bytes or (gpu.memory_bytes if gpu else None)
        if memory is None and kv_memory is None:
            raise InputError("no GPU memory to budget: give --gpu, --gpu-memory or --kv-memory")
        return memory or 0, "device memory"

    def stage_layout(self, setup: Setup, stage: Stage) -> None:
        return None

    def budget(self, setup: Setup, stage: Stage, layout: None, fraction: float) -> Budget:
        return plain_budget(setup.total, fraction, stage.weights_bytes, setup.reserve)

    def pool(self, setup: Setup, layouts: list[None], budgets: list[Budget]) -> BytePool:
        return BytePool(budgets, setup.dep.stage_request_bytes, setup.seq)

    def context(self, setup: Setup, pool: Pool) -> tuple[int | None, LimitedBy, bool]:
        """The plain view caps the longest context at the model's, but does not refuse a longer request."""
        return setup.options.max_model_len or setup.dep.model.max_context, LimitedBy.MODEL_CONTEXT, False
