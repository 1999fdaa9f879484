"""Models by Hugging Face repo id, against a local Hub on 127.0.0.1 (tests/hubserver.py): config files through
huggingface_hub with its cache, offline mode and token; safetensors headers by range requests (single,
sharded, fp8-quantized, tied lm_head stored); gated, missing and unreachable repos."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch
from click.testing import CliRunner
from hubserver import Hub, Repo
from safetensors.torch import save

from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.errors import InputError
from kvplan.model.load import load_model

HIDDEN, INTER, LAYERS, VOCAB = 64, 128, 2, 256
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
          "intermediate_size": INTER, "num_hidden_layers": LAYERS, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": VOCAB, "max_position_embeddings": 2048, "torch_dtype": "bfloat16",
          "tie_word_embeddings": False}


def llama_tensors(dtype=torch.bfloat16, lm_head: bool = True) -> dict[str, torch.Tensor]:
    """The tensors a Llama checkpoint of CONFIG's shape stores, by their checkpoint names."""
    kv = 2 * HIDDEN // 4
    t = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        t |= {f"{p}.self_attn.q_proj.weight": (HIDDEN, HIDDEN), f"{p}.self_attn.k_proj.weight": (kv, HIDDEN),
              f"{p}.self_attn.v_proj.weight": (kv, HIDDEN), f"{p}.self_attn.o_proj.weight": (HIDDEN, HIDDEN),
              f"{p}.mlp.gate_proj.weight": (INTER, HIDDEN), f"{p}.mlp.up_proj.weight": (INTER, HIDDEN),
              f"{p}.mlp.down_proj.weight": (HIDDEN, INTER), f"{p}.input_layernorm.weight": (HIDDEN,),
              f"{p}.post_attention_layernorm.weight": (HIDDEN,)}
    if lm_head:
        t["lm_head.weight"] = (VOCAB, HIDDEN)
    return {name: torch.zeros(shape, dtype=dtype) for name, shape in t.items()}


def files(tensors: dict[str, torch.Tensor], config: dict, shards: int = 1) -> dict[str, bytes]:
    out = {"config.json": json.dumps(config).encode()}
    if shards == 1:
        out["model.safetensors"] = save(tensors)
        return out
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        out[fname] = save(part)
        weight_map |= dict.fromkeys(part, fname)
    out["model.safetensors.index.json"] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    return out


@pytest.fixture
def hub(tmp_path, monkeypatch):
    server = Hub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("KVPLAN_CACHE", str(tmp_path / "kvplan"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: a test that imported it offline (test_golden) must
    # not leave its HTTP session refusing every request here
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("KVPLAN_HUB_TIMEOUT", "5")
    yield server
    server.stop()


def stored(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def test_plan_by_repo_id_reads_only_headers(hub):
    tensors = llama_tensors()
    hub.repos["tiny/llama"] = Repo(files(tensors, CONFIG))
    r = CliRunner().invoke(main, ["plan", "tiny/llama", "--gpu", "h100", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["params"] == sum(t.numel() for t in tensors.values())
    assert data["model"]["source"].startswith("Hugging Face Hub tiny/llama@aaaaaaaaaaaa")
    assert any("weights from the checkpoint's headers" in n for n in data["notes"])
    # the weights file was only ever read by small ranges: its 8-byte length, then its header
    ranges = [rng for method, path, rng in hub.requests if path.endswith("model.safetensors")]
    assert ranges and all(rng is not None for rng in ranges)
    assert not any(method == "GET" and rng is None and path.endswith(".safetensors")
                   for method, path, rng in hub.requests)


def test_sharded_checkpoint_and_revision(hub):
    tensors = llama_tensors(torch.float32)
    hub.repos["tiny/sharded"] = Repo(files(tensors, {**CONFIG, "torch_dtype": "float32"}, shards=3),
                                     branches={"main": "b" * 40, "v1": "c" * 40})
    spec = load_model("tiny/sharded@v1")
    assert spec.checkpoint.bytes_by_dtype == {"F32": stored(tensors)}
    assert spec.checkpoint.stored_bytes == stored(tensors)
    # served in bf16: floating-point weights are cast, 2 bytes each
    assert Deployment(spec).weights_bytes_per_gpu == sum(t.numel() for t in tensors.values()) * 2


def test_fp8_block_checkpoint_bytes_as_stored(hub):
    """fp8 weights + one fp32 scale per 128 x 128 block, everything else bf16: kvplan's layout equals the file."""
    tensors = llama_tensors()
    for name in list(tensors):
        if name.endswith("proj.weight"):
            out, inp = tensors[name].shape
            tensors[name] = torch.zeros((out, inp), dtype=torch.float8_e4m3fn)
            tensors[name.replace(".weight", ".weight_scale_inv")] = torch.zeros(
                (math.ceil(out / 128), math.ceil(inp / 128)), dtype=torch.float32)
    config = {**CONFIG, "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128],
                                                "activation_scheme": "dynamic"}}
    hub.repos["tiny/fp8"] = Repo(files(tensors, config))
    spec = load_model("tiny/fp8")
    dep = Deployment(spec)
    assert spec.checkpoint.bytes_by_dtype["F8_E4M3"] > 0
    assert dep.inventory_bytes() == stored(tensors)  # the config-derived layout is the stored one
    assert dep.weights_bytes_per_gpu == stored(tensors)
    assert not any("the config describes" in n for n in spec.notes)


def test_tied_lm_head_stored_copy_is_not_loaded(hub):
    tensors = llama_tensors()
    hub.repos["tiny/tied"] = Repo(files(tensors, {**CONFIG, "tie_word_embeddings": True}))
    spec = load_model("tiny/tied")
    lm_head = VOCAB * HIDDEN * 2
    assert spec.checkpoint.excluded[0][1] == lm_head
    assert Deployment(spec).weights_bytes_per_gpu == stored(tensors) - lm_head
    assert any("tied lm_head" in n for n in spec.notes)


def test_mismatch_between_config_and_checkpoint_is_reported(hub):
    tensors = llama_tensors()
    tensors["model.extra_adapter.weight"] = torch.zeros((VOCAB, HIDDEN), dtype=torch.bfloat16)
    hub.repos["tiny/extra"] = Repo(files(tensors, CONFIG))
    spec = load_model("tiny/extra")
    assert any("the config describes" in n and "kvplan uses the checkpoint's bytes" in n for n in spec.notes)
    assert Deployment(spec).weights_bytes_per_gpu == stored(tensors)


def test_quantize_config_side_file(hub):
    repo_files = files(llama_tensors(), CONFIG)
    repo_files["quantize_config.json"] = json.dumps({"bits": 4, "group_size": 32, "desc_act": False}).encode()
    hub.repos["tiny/gptq"] = Repo(repo_files)
    assert load_model("tiny/gptq").quant.name == "gptq int4 (group 32)"


def test_gated_missing_and_revision_errors(hub, monkeypatch):
    hub.repos["tiny/gated"] = Repo(files(llama_tensors(), CONFIG), gated=True)
    with pytest.raises(InputError, match=r"gated or private .*HF_TOKEN"):
        load_model("tiny/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_valid")
    assert load_model("tiny/gated").params > 0
    with pytest.raises(InputError, match=r"tiny/nothing not found .*\(HTTP 404\)"):
        load_model("tiny/nothing")
    hub.repos["tiny/llama"] = Repo(files(llama_tensors(), CONFIG))
    with pytest.raises(InputError, match="revision 'nope' of tiny/llama not found"):
        load_model("tiny/llama@nope")


def test_offline_uses_the_cache_and_says_when_it_cannot(hub, monkeypatch):
    hub.repos["tiny/llama"] = Repo(files(llama_tensors(), CONFIG))
    online = load_model("tiny/llama")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    offline = load_model("tiny/llama")
    assert len(hub.requests) == before  # nothing asked of the network
    assert offline.params == online.params and offline.checkpoint == online.checkpoint
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set and tiny/other is not in the local cache"):
        load_model("tiny/other")


def test_unreachable_and_slow_hub(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(InputError, match="cannot reach"):
        load_model("tiny/llama")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.repos["tiny/slow"] = Repo(files(llama_tensors(), CONFIG))
    hub.delay = 2.0
    monkeypatch.setenv("KVPLAN_HUB_TIMEOUT", "0.3")
    with pytest.raises(InputError, match=r"did not answer|cannot reach"):
        load_model("tiny/slow")


def test_cli_error_is_one_line(hub):
    r = CliRunner().invoke(main, ["plan", "tiny/nothing", "--gpu", "h100"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not found" in r.output


def test_no_config_and_no_gguf(hub):
    hub.repos["tiny/empty"] = Repo({"README.md": b"hello"})
    with pytest.raises(InputError, match=r"neither a config\.json nor a \.gguf file"):
        load_model("tiny/empty")


def test_catalog_names_stay_offline(hub):
    load_model("meta-llama/Llama-3.1-8B")  # an embedded HF id: no request at all
    assert hub.requests == []


def test_local_folder_reads_safetensors_headers(tmp_path):
    tensors = llama_tensors()
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in files(tensors, CONFIG, shards=2).items():
        (folder / name).write_bytes(data)
    spec = load_model(folder)
    assert spec.checkpoint.stored_bytes == stored(tensors)


def test_truncated_header_is_an_error(tmp_path):
    from kvplan.model.sources.checkpoint import read_local

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(struct.pack("<Q", 500) + b'{"a": ')
    with pytest.raises(InputError, match="not valid JSON"):
        read_local(bad)


def test_gguf_only_repo_read_from_its_header(hub, tmp_path):
    from test_gguf import write_tiny_llama

    path = tmp_path / "tiny-Q8_0.gguf"
    write_tiny_llama(path)
    data = path.read_bytes()
    hub.repos["tiny/gguf"] = Repo({"tiny-Q8_0.gguf": data, "README.md": b"gguf only"})
    spec = load_model("tiny/gguf")
    from kvplan.model.sources import gguf

    header = gguf.parse_file(path)
    assert spec.num_layers == 2 and spec.checkpoint.stored_bytes == header.total_bytes
    assert Deployment(spec).weights_bytes_per_gpu == header.total_bytes  # as stored, whatever the quant types
    assert all(rng is not None for method, p, rng in hub.requests if p.endswith(".gguf"))


def test_gguf_repo_with_several_models_asks_for_one(hub, tmp_path):
    from test_gguf import write_tiny_llama

    path = tmp_path / "a.gguf"
    write_tiny_llama(path)
    data = path.read_bytes()
    hub.repos["tiny/ggufs"] = Repo({"m-Q4.gguf": data, "m-Q8.gguf": data})
    with pytest.raises(InputError, match=r"holds 2 GGUF models .*name one, e\.g\. tiny/ggufs:m-Q4\.gguf"):
        load_model("tiny/ggufs")
    assert load_model("tiny/ggufs:m-Q8.gguf").num_layers == 2


def test_unreachable_hub_falls_back_to_the_cache(hub, monkeypatch):
    hub.repos["tiny/llama"] = Repo(files(llama_tensors(), CONFIG))
    online = load_model("tiny/llama")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    cached = load_model("tiny/llama")
    assert cached.params == online.params and cached.checkpoint == online.checkpoint
    assert any("unreachable" in n and "cached copy used" in n for n in cached.notes)
