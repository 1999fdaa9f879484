"""vLLM V1's encoder profile: the vision tower on its largest dummy images before the text model's dummy run
(v1/worker/gpu_model_runner.py profile_run, read in 0.8.5, 0.10.0, 0.11.0 and 0.19.0; v1/worker/utils.py and
multimodal/encoder_budget.py MultiModalBudget; gpu/mm/encoder_runner.py for Model Runner V2 in 0.29.0). Every
expected number below is derived by hand from those files and the model code the comments name."""

from __future__ import annotations

from kvplan.budget import TermKind
from kvplan.engines.vllm import encoder_images
from kvplan.planning import plan

GIB = 2**30


def _act(p) -> int:
    return p.scenarios[0].budgets[0].term(TermKind.ACTIVATION)


def test_encoder_images_by_release():
    """The encoder budget is max(max_num_batched_tokens, one image's tokens). 0.8.5-0.9.2 divide it rounding
    up, at most max_num_seqs x the per-prompt limit (999 in V1); 0.10.0 rounds down (at least 1); 0.10.1 on
    also caps a prompt's images at max_model_len // tokens (at least 1). Llama-4's 2,448-token image at 8,192
    batched tokens: ceil 4, floor 3; with 2 sequences and max_model_len 2,048 (< 2,448) the per-prompt cap is
    1, so 0.10.1 runs 2 images where 0.10.0 still runs 3."""
    assert encoder_images("ceil", 2448, 8192, 1024, 131072, 999) == 4
    assert encoder_images("floor", 2448, 8192, 1024, 131072, 999) == 3
    assert encoder_images("floor", 2448, 8192, 2, 2048, 999) == 3
    assert encoder_images("per_prompt", 2448, 8192, 2, 2048, 999) == 2
    assert encoder_images("per_prompt", 2448, 2048, 256, 2048, 999) == 1  # the budget is at least one image


def test_gemma3_siglip_profile_at_0_19():
    """Gemma-3-4B on an H100 at vLLM 0.19.0, 8,192 batched tokens, 1,024 sequences: 8,192 // 256 = 32 dummy
    images of 3 x 896 x 896 pixels, cast to bf16 (multimodal/processing context.py _postprocess_output):
    32 x 2,408,448 x 2 = 154,140,672 B, alive until profile_run returns. SigLIP (siglip.py 0.19.0): 4,096
    patches per image; at the MLP the encoder's pool (the embeddings), the residual and LN2 output (3 x 1,152)
    and fc1 / GELU (2 x 4,304) = 12,064 bf16 per patch (the attention step's 8 x 1,152 = 9,216 is smaller):
    32 x 4,096 x 12,064 x 2 = 3,162,505,216 B. The outputs kept in the encoder cache: 32 x 256 x 2,560 x 2 =
    41,943,040 B. So the peak is max(pixels + tower, text model + pixels + outputs)."""
    kw = dict(gpu="h100", engine_version="0.19.0", max_model_len=8192)
    text_only = _act(plan("gemma-3-4b", images_per_prompt=0, **kw))
    pixels, tower, kept = 154_140_672, 3_162_505_216, 41_943_040
    got = _act(plan("gemma-3-4b", **kw))
    assert got == max(pixels + tower, text_only + pixels + kept)
    assert got == text_only + pixels + kept  # the 262k-vocabulary sampler outweighs the tower here
    # llm-d-planner's 0.19.0 log (benchmarks/engine_logs.csv, gemma-3-4b-it on an H100): 3.89 GiB peak
    assert abs(got / GIB - 3.89) / 3.89 < 0.015


def test_gemma3_profile_across_releases():
    """Gemma-3-4B, 8,192 batched tokens, 1,024 sequences, one image = 2,408,448 pixels, 256 embeddings of 2,560.
    0.10.1 budgets an image by its placeholder ("\\n\\n", <start_of_image>, 256 image tokens, <end_of_image>,
    "\\n\\n": 260 tokens; registry.py get_mm_max_contiguous_tokens), so 8,192 // 260 = 31 images, and keeps
    the processor's fp32 pixels: 31 x 2,408,448 x 4 = 298,647,552 B. 0.11.0 casts them to bf16 (149,323,776 B)
    and copies each output into a zeroed (8,192, 2,560) tensor: 31 x 8,192 x 2,560 x 2 = 1,300,234,240 B beside
    the originals (31 x 256 x 2,560 x 2 = 40,632,320 B). 0.14.0 counts the 256 embeddings (32 images) and keeps
    the outputs as they are. Model Runner V2 (0.29.0, gpu/mm/encoder_runner.py execute_mm_encoder) drops the
    pixels when the encoder returns and its sampler keeps only the logits, so the tower's own peak (pixels
    154,140,672 + 3,162,505,216 B) is the profile's."""
    base = dict(gpu="h100", max_model_len=8192, max_num_batched_tokens=8192, max_num_seqs=1024)
    kept = {"0.10.1": 298_647_552 + 40_632_320, "0.11.0": 149_323_776 + 40_632_320 + 1_300_234_240,
            "0.14.0": 154_140_672 + 41_943_040}
    for version, extra in kept.items():
        text_only = _act(plan("gemma-3-4b", engine_version=version, images_per_prompt=0, **base))
        assert _act(plan("gemma-3-4b", engine_version=version, **base)) == text_only + extra, version
    v2 = dict(engine_version="0.29.0", **base)
    text_only = _act(plan("gemma-3-4b", images_per_prompt=0, **v2))
    got = _act(plan("gemma-3-4b", **v2))
    assert got == max(154_140_672 + 3_162_505_216, text_only + 41_943_040) == 154_140_672 + 3_162_505_216


def test_pixtral_block_mask_and_separators():
    """Mistral-3 (Magistral-Small-2509's config: Pixtral 1,024 wide, MLP 4,096, patch 14, image 1,540, merge 2):
    a grid of (1,540 - 1) // 28 + 1 = 55 merged tokens per side, 3,025 embeddings, 55 x 56 = 3,080 prompt
    tokens with the row breaks; 110^2 = 12,100 patches. At 0.19.0 (embeddings budget) 8,192 // 3,025 = 2
    images run as one sequence of N = 24,200 patches; without xformers (not a dependency from 0.12.0) SDPA
    takes a dense bf16 N x N mask: 2 x 24,200^2 = 1,171,280,000 B (N is a multiple of 8: no padded copy). MLP:
    N x (7 x 1,024 + 3 x 4,096) x 2 = 941,670,400 B. Pixels 2 x 3 x 1,540^2 x 2 = 28,459,200 B; kept 2 x 3,025
    x 5,120 x 2 = 61,952,000 B. At 0.11.0 (placeholder budget, xformers) 8,192 // 3,080 = 2 images without the
    mask, each output copied into a zeroed (8,192, 5,120) tensor: 2 x 8,192 x 5,120 x 2 = 167,772,160 B more. At
    0.12.0 (the dense mask) the copies have an item's 3,080 placeholder tokens (gpu_model_runner.py 0.12.0
    profile_run: max_tokens_by_modality): 2 x 3,080 x 5,120 x 2 = 63,078,400 B; 0.13.0 keeps the outputs as
    they are."""
    model = "magistral-small-2509"  # the embedded catalog copy of the config
    kw = dict(gpu="h100", max_model_len=16000, max_num_batched_tokens=8192)
    pixels, kept, masked = 28_459_200, 61_952_000, 1_171_280_000 + 941_670_400
    for version, tower, extra in (("0.19.0", masked, 0), ("0.11.0", 941_670_400, 167_772_160),
                                  ("0.12.0", masked, 63_078_400), ("0.13.0", masked, 0)):
        text_only = _act(plan(model, engine_version=version, images_per_prompt=0, **kw))
        got = _act(plan(model, engine_version=version, **kw))
        assert got == max(pixels + tower, text_only + pixels + kept + extra), version


def test_llama4_tiles_and_rotary_peak():
    """Llama-4 Scout at 0.19.0 (mllama4.py): the dummy image is 16 tiles of 336 plus the global tile, 17 x 144
    = 2,448 embeddings (pixel shuffle 0.5 of 24 x 24 patches); at 8,192 batched tokens 3 images. Pixels bf16
    (the processor returns bf16): 3 x 17 x 3 x 336^2 x 2 = 34,546,176 B. The rotary step holds 3 whole and 13
    TP-split 1,408-wide tensors per patch (llama4_vision_rope.py forward_native's fp32 and complex64 q / k);
    the MLP 4 x 1,408 + 2 x 5,632: at TP 4, max(3 x 1,408 + 13 x 352, 4 x 1,408 + 2 x 1,408) = 8,448 bf16 per
    patch, x 3 x 17 x 577 patches x 2 B = 497,198,592 B. Kept: 3 x 2,448 x 5,120 x 2 = 75,202,560 B."""
    kw = dict(gpu="h100", tp=4, engine_version="0.19.0", max_model_len=32768, max_num_batched_tokens=8192)
    text_only = _act(plan("llama-4-scout", images_per_prompt=0, **kw))
    got = _act(plan("llama-4-scout", **kw))
    pixels, tower, kept = 34_546_176, 3 * 17 * 577 * 8_448 * 2, 75_202_560
    assert tower == 497_198_592
    assert got == max(pixels + tower, text_only + pixels + kept)


def test_a_logged_image_count_replaces_the_derived_one():
    """V1's profile prints how many dummy images it ran ("Encoder cache will be initialized with a budget of %s
    tokens, and profiled with %s %s items of the maximum feature size.", gpu_model_runner.py profile_run 0.8.5 to
    0.19.0): explain sizes the tower with that count. Gemma-3-4B at 0.19.0 with 5 images instead of the derived
    32: pixels 5 x 2,408,448 x 2 = 24,084,480 B, embeddings 5 x 256 x 2,560 x 2 = 6,553,600 B kept."""
    from kvplan.explain import _run, _setup
    from kvplan.logs import parse_log

    log = ("(APIServer pid=1) INFO 05-28 08:00:00 [api_server.py:1] vLLM API server version 0.19.0\n"
           "(EngineCore pid=1) INFO 05-28 08:00:20 [gpu_model_runner.py:4780] Encoder cache will be initialized "
           "with a budget of 8192 tokens, and profiled with 5 image items of the maximum feature size.\n")
    setup = _setup(parse_log(log), "gemma-3-4b", "h100", None, None, [])
    assert setup.settings.encoder_images == 5
    got = _run(setup).budgets[0].term(TermKind.ACTIVATION)
    text_only = _act(plan("gemma-3-4b", gpu="h100", engine_version="0.19.0", images_per_prompt=0))
    assert got == text_only + 24_084_480 + 6_553_600


def _images(p) -> int:
    source = next(t.source for t in p.scenarios[0].budgets[0].terms if t.kind is TermKind.ACTIVATION)
    return int(source.split(" dummy images")[0].rsplit(" ", 1)[1])


def test_image_counts_match_public_logs():
    """The count V1 prints ("... profiled with N image items of the maximum feature size"), from public logs
    (code-index file ids; none of them prints the peak it led to):
    - 9297248278, vLLM 0.11.0rc2, gemma-3-27b-it, --limit-mm-per-prompt image=2, max_model_len 4096, budget 8192:
      31 images, the 260-token placeholder of 0.10.1-0.13 (8,192 // 256 embeddings would give 32);
    - 14030680623, vLLM 0.12.0 image, Llama-4-Scout at TP 8, budget 8192: 3 images (2,467-token placeholder);
    - vllm-project/vllm#16292, vLLM 0.8.3, Mistral-Small-3.1-24B (Magistral-Small-2509's architecture),
      image=10, max_model_len 65536, budget 8192: 3 images (ceil(8,192 / 3,025) before 0.10)."""
    gemma = plan("gemma-3-27b", gpu="mi300x", engine_version="0.11.0", max_model_len=4096,
                 max_num_batched_tokens=8192, images_per_prompt=2)
    assert _images(gemma) == 31
    scout = plan("llama-4-scout", gpu="h200", tp=8, engine_version="0.12.0", max_model_len=131072,
                 max_num_batched_tokens=8192)
    assert _images(scout) == 3
    mistral = plan("magistral-small-2509", gpu="h100", engine_version="0.8.3", max_model_len=65536,
                   max_num_batched_tokens=8192, images_per_prompt=10)
    assert _images(mistral) == 3
