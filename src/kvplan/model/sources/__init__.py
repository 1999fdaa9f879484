"""Where model inputs come from, besides a config.json: the Hugging Face Hub by repo id (`hub`: config files
through the HF cache, safetensors headers by HTTP range requests), GGUF files (`gguf` reads a header's tensors
and exact bytes, `gguf_arch` maps its metadata to a config dict per architecture), and safetensors headers
(`checkpoint`: the stored bytes per dtype and what an engine loads). Each yields a config dict and/or a list of
stored tensors that `kvplan.model.load` turns into a ModelSpec.
"""
