"""Measure the allocator's peak of Mllama's vision tower on dummy images, on a GPU (not run by the tests).

kvplan counts vLLM V0's Mllama profile (kvplan.engines.vllm.tiled_vision_peak) as a structural estimate that
matches the one public log (vllm-project/vllm#12126: 36.63 GiB at 128 images) while a replay of the released
forward's tensor lifetimes gives about 60 GiB. This script settles which on a device: it builds transformers'
MllamaVisionModel from the config with random bf16 weights (the same tower vLLM's mllama.py ports: SDPA attention
with the dense aspect-ratio mask, 32 local + 8 global layers, the intermediate states kept), feeds it N images of
4 tiles as V0's profile does, and prints torch.cuda.max_memory_allocated above the weights for each N, beside
kvplan's estimate. Run where a GPU is lent:

    python benchmarks/device_mllama_tower.py [--images 16,32,64,128] > benchmarks/device_mllama_tower.txt

Needs torch and transformers (present on the device machine), not kvplan's install.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "src" / "kvplan" / "data" / "models"


def config_path() -> Path:
    found = sorted(CONFIG.glob("meta-llama--Llama-3.2-11B-Vision*.json"))
    if not found:
        sys.exit("the Llama-3.2-11B-Vision config is not in src/kvplan/data/models")
    return found[0]


def estimate(images: int, v: dict) -> int:
    """kvplan's formula (tiled_vision_peak), restated so the script runs without kvplan installed."""
    tiles, size, channels = v["max_num_tiles"], v["image_size"], v["num_channels"]
    patches = (size // v["patch_size"]) ** 2 + 1
    p = -(-patches // 8) * 8
    return images * (2 * tiles * channels * size ** 2 * 4 + 2 * (tiles * p) ** 2
                     + 2 * tiles * p * (4 * v["hidden_size"] + 2 * v["intermediate_size"]))


def main() -> None:
    import torch
    from transformers import MllamaVisionConfig
    from transformers.models.mllama.modeling_mllama import MllamaVisionModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", default="16,32,64,128")
    args = parser.parse_args()
    raw = json.loads(config_path().read_text())["vision_config"]
    cfg = MllamaVisionConfig(**raw)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = MllamaVisionModel(cfg).to("cuda", torch.bfloat16).eval()
    weights = torch.cuda.memory_allocated()
    tiles, size = raw["max_num_tiles"], raw["image_size"]
    print(f"weights {weights / 2**30:.2f} GiB; torch {torch.__version__}; {torch.cuda.get_device_name()}")
    for n in (int(x) for x in args.images.split(",")):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            with torch.inference_mode():
                pixels = torch.zeros(n, 1, tiles, 3, size, size, device="cuda", dtype=torch.float32)
                ratio_ids = torch.full((n, 1), 6, device="cuda", dtype=torch.long)  # the 2 x 2 canvas
                ratio_mask = torch.ones(n, 1, tiles, device="cuda", dtype=torch.long)
                model(pixels.to(torch.bfloat16), ratio_ids, ratio_mask)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - weights
            print(f"images {n}: measured {peak / 2**30:.2f} GiB, kvplan {estimate(n, raw) / 2**30:.2f} GiB")
        except torch.cuda.OutOfMemoryError:
            print(f"images {n}: out of memory")
        finally:
            pixels = ratio_ids = ratio_mask = None


if __name__ == "__main__":
    main()
