"""The engine contract: engines as plug-ins in one registry, version rules as tables, KV kinds that answer for
themselves, and no engine name or KV class dispatch outside the places that own them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import kvplan
from kvplan.budget import Budget, Term, TermKind
from kvplan.capacity import TokenPool
from kvplan.cli import main
from kvplan.engines import Engine, EngineSettings, Printed, RuleTable, engine_names, get_engine, register, unregister
from kvplan.engines.base import row
from kvplan.engines.common import loaded_weights
from kvplan.engines.vllm import V0_RULES, V1_RULES
from kvplan.errors import InputError
from kvplan.model.spec import (
    MLAKV,
    AttentionKV,
    ChunkedLocalKV,
    CrossAttentionKV,
    Mamba1State,
    NoKV,
    Retention,
    SlidingWindowKV,
    _KVBase,
)
from kvplan.units import GiB

SRC = Path(__file__).resolve().parents[1] / "src" / "kvplan"


# ------------------------------------------------------------------------------------------- a toy engine

@dataclass(frozen=True)
class ToyOptions:
    slots: int = 8  # tokens per cache slot


class ToyEngine(Engine):
    """A made-up engine: keeps 1 GiB back, then slots of 8 tokens over every layer's K and V."""

    name = "toy"
    label = "Toy"
    default_version = "1.0"
    default_util = 0.5
    options_class = ToyOptions

    def stage_layout(self, setup, stage):
        return round(sum(layer.kv.bytes_per_token(setup.dep.kv_bytes, setup.dep.tp) for layer in stage.layers))

    def budget(self, setup, stage, layout, fraction):
        terms = [Term(TermKind.WEIGHTS, stage.weights_bytes, "tensors"), Term(TermKind.RESERVE, GiB, "toy reserve")]
        return Budget.of(setup.total, fraction, math.floor(setup.total * fraction), terms)

    def pool(self, setup, layouts, budgets):
        slot = setup.options.slots
        tokens = min(max(0, b.kv_pool) // cell for b, cell in zip(budgets, layouts, strict=True)) // slot * slot
        return TokenPool(budgets, tokens, layouts, slot)

    def printed(self, setup, pool, budgets, context):
        return Printed(self.name, setup.version_text, setup.total, setup.total_source, context,
                       block_size=setup.options.slots, kv_tokens=pool.tokens)


@pytest.fixture
def toy():
    engine = register(ToyEngine())
    yield engine
    unregister(engine.name)


def test_a_toy_engine_registered_from_a_test_is_everywhere(toy):
    assert "toy" in engine_names() and get_engine("toy") is toy
    # the library: plan under it, by the hand derivation of its budget
    p = kvplan.plan("llama-3.1-8b", gpu="h100", engine="toy", seq=4096)
    s, dep = p.scenarios[0], p.deployment
    total = kvplan.get_gpu("h100").torch_total()[0]
    cell = 32 * 8 * (128 + 128) * 2  # 32 layers x 8 KV heads x (K + V) x bf16
    pool = math.floor(total * 0.5) - dep.stages[0].weights_bytes - GiB
    assert s.util == 0.5 and s.budgets[0].kv_pool == pool
    assert s.printed.kv_tokens == pool // cell // 8 * 8
    assert s.capacity.max_concurrent_requests == s.printed.kv_tokens // 4096
    # the CLI's choices
    r = CliRunner().invoke(main, ["plan", "llama-3.1-8b", "--gpu", "h100", "--engine", "toy", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["scenarios"][0]["engine"]["kv_tokens"] == s.printed.kv_tokens
    assert "toy" in CliRunner().invoke(main, ["plan", "--engine", "nope"]).output
    # the web API
    from fastapi.testclient import TestClient

    from kvplan.web.app import create_app

    client = TestClient(create_app())
    listed = client.get("/api/engines").json()
    assert listed["default"] == "vllm" and "toy" in [e["name"] for e in listed["engines"]]
    answer = client.post("/api/plan", json={"model": "llama-3.1-8b", "gpu": "h100", "engine": "toy", "seq": 4096})
    assert answer.status_code == 200 and answer.json()["scenarios"][0]["engine"]["kv_tokens"] == s.printed.kv_tokens
    assert client.post("/api/plan", json={"model": "llama-3.1-8b", "engine": "nope"}).status_code == 422


def test_unknown_engine_names_the_registered_ones():
    with pytest.raises(InputError, match=r"unknown --engine 'nope': use one of vllm, vllm-v0, sglang, tgi"):
        EngineSettings(engine="nope")


def test_an_engine_that_forgets_a_hook_cannot_be_made():
    class Half(Engine):
        name, label, default_version, options_class = "half", "Half", "1", ToyOptions

    with pytest.raises(TypeError):
        Half()


# ------------------------------------------------------------------------------------------ layering checks

def _sources(*globs: str) -> list[Path]:
    return [p for g in globs for p in SRC.rglob(g)]


def test_no_engine_name_is_compared_as_a_string_outside_engines():
    names = [n for n in engine_names() if n != "none"]  # "none" is also an ordinary word (quant, KV kinds)
    quoted = re.compile(r"""["']({})["']""".format("|".join(map(re.escape, names))))
    plain = re.compile(r"""engine\W{0,3}(==|!=|=)\s*["']none["']""")
    offenders = []
    for path in _sources("*.py", "*.js", "*.html"):
        if "engines" in path.relative_to(SRC).parts:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if quoted.search(line) or plain.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_isinstance_on_kv_spec_classes_outside_the_spec():
    classes = "AttentionKV|SlidingWindowKV|ChunkedLocalKV|MLAKV|Mamba1State|Mamba2State|GatedDeltaNetState|" \
              "CrossAttentionKV|NoKV"
    pattern = re.compile(rf"isinstance\([^)]*\b({classes})\b")
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in _sources("*.py") if p.name != "spec.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders


def test_engines_do_not_import_each_other():
    engine_modules = {"vllm", "sglang", "tgi", "llamacpp", "plain"}
    for path in (SRC / "engines").glob("*.py"):  # the registry (__init__) loads them; engines share common
        if path.stem == "__init__":
            continue
        imports = re.findall(r"from kvplan\.engines\.(\w+) import|import kvplan\.engines\.(\w+)", path.read_text())
        others = {a or b for a, b in imports} & engine_modules - {path.stem}
        assert not others, f"{path.name} imports {others}"


# ------------------------------------------------------------------------------------------- version rules

def test_rules_for_applies_every_row_up_to_the_version():
    r17, r18, r21 = (V1_RULES.rules_for(v) for v in ((0, 17, 1), (0, 18, 0), (0, 21, 0)))
    assert (r17.hybrid_group_ratio, r17.non_torch_tp1, r17.cudagraph_estimate) == (1.25, "tp1_old_gib", False)
    assert (r18.hybrid_group_ratio, r18.non_torch_tp1, r18.tokens_from_concurrency) == (1.5, "tp1_gib", False)
    assert (r21.cudagraph_estimate, r21.tokens_from_concurrency) == (True, True)
    assert [V1_RULES.rules_for(v).sampler.label.split(" (")[0] for v in ((0, 8, 4), (0, 10, 1), (0, 16, 0), (0, 17, 0),
                                                                        (0, 30, 0), (0, 8, 5))] == [
        "PyTorch sort", "FlashInfer top-k/top-p", "PyTorch sort", "Triton top-k/top-p from 8 rows",
        "Triton top-k/top-p", "FlashInfer top-k/top-p"]  # 0.8.5: its image's FlashInfer (< 0.2.3) runs by default
    assert all(r.source for r in (*V1_RULES.rows, *V0_RULES.rows))


def test_a_rule_table_refuses_rows_that_do_not_fit_its_values():
    @dataclass(frozen=True)
    class Values:
        a: int
        b: str

    with pytest.raises(TypeError, match="must set every field"):
        RuleTable(Values, row("0.0.0", "base", a=1))
    with pytest.raises(TypeError, match="unknown field"):
        RuleTable(Values, row("0.0.0", "base", a=1, b="x"), row("1.0", "later", c=2))
    table = RuleTable(Values, row("0.0.0", "base", a=1, b="x"), row("2.0", "later", b="y"), row("1.5", "mid", a=2))
    assert table.rules_for((1, 9, 9)) == Values(2, "x") and table.rules_for((2, 0, 0)) == Values(2, "y")


# ------------------------------------------------------------------------------------------------ KV kinds

def test_kv_specs_answer_for_themselves():
    gqa = AttentionKV(8, 128, 128)
    assert (gqa.kind, gqa.retention, gqa.window) == ("full_attention", Retention.FULL, None)
    assert (gqa.k_width(2), gqa.v_width(2), gqa.bytes_per_token(2, 2)) == (512, 512, 2048)  # 4 heads x 128
    sw = SlidingWindowKV(8, 128, 128, 4096)
    assert (sw.kind, sw.retention, sw.tokens_held(10_000)) == ("sliding_window", Retention.SLIDING, 4096)
    ch = ChunkedLocalKV(8, 128, 128, 8192)
    assert (ch.kind, ch.retention, ch.tokens_held(5000)) == ("chunked_local_attention", Retention.CHUNKED, 5000)
    mla = MLAKV(512, 64)
    assert (mla.k_width(8), mla.v_width(8), mla.bytes_per_token(2, 8)) == (576, 0, 1152)  # replicated
    m = Mamba1State(5120, 16, 4)
    assert (m.retention, m.bytes_per_token(2), m.tokens_held(100)) == (Retention.STATE, 0.0, 0)
    assert m.state_bytes(2, 2) == (3 * 5120 + 5120 * 16) * 2
    x = CrossAttentionKV(8, 128, 1601)
    assert (x.retention, x.bytes_per_token(2), x.state_bytes(2, 2, 1)) == (Retention.ENCODER, 0.0, 1601 * 8 * 256 * 2)
    assert (NoKV().retention, NoKV().bytes_per_token(2)) == (Retention.NONE, 0.0)


def test_a_kv_spec_that_forgets_a_method_fails_instead_of_counting_zero():
    class Forgetful(_KVBase):
        kind = "forgetful"
        retention = Retention.FULL

    with pytest.raises(NotImplementedError, match="Forgetful does not define k_width"):
        Forgetful().bytes_per_token(2)
    with pytest.raises(NotImplementedError):
        Forgetful().state_bytes(2, 2)
    with pytest.raises(NotImplementedError):
        Forgetful().tokens_held(10)


def test_loaded_weights_are_shared_not_an_engine_import():
    dep = kvplan.Deployment(kvplan.load_model("llama-3.1-8b"))
    assert loaded_weights(dep, dep.stages[0]) is loaded_weights(dep, dep.stages[0])  # cached on the deployment


@pytest.mark.parametrize("engine", ["vllm", "vllm-v0", "sglang", "tgi", "llamacpp", "none"])
def test_shortfall_counts_the_weights_that_do_not_fit(engine):
    """Fix (#10): with a negative pool the shortfall is what the requests need minus that pool, not the requests'
    bytes alone. Llama-3.1-70B in bf16 (141 GB of weights) on one 80 GB H100: short by the weights' excess too."""
    p = kvplan.plan("llama-3.1-70b", gpu="h100", seq=4096, engine=engine)
    c, budget = p.scenarios[0].capacity, p.scenarios[0].budgets[0]
    assert budget.kv_pool < -50 * GiB and not c.fits
    assert c.shortfall_bytes == c.kv_cache_bytes - budget.kv_pool > 50 * GiB
