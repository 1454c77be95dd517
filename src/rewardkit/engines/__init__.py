"""Generation engines: one interface, two back-ends, used by `checkpoint_inference`, `rewardkit generate` and
the demo.

- `hf` (`engines.hf.generate_texts`): the live transformers model, batched, left padded, greedy, chat templated,
  the prompts' shared prefix encoded once.
- `vllm` (`engines.vllm_engine.VLLMEngine`): `vllm.LLM` given the same token ids, stop ids and decoding, a LoRA
  adapter through vLLM's LoRA support.

Both take prompts (strings or chat messages) and return one completion string per prompt, in order:
`generate_texts(model, tokenizer, prompts, ...)` / `VLLMEngine(model_dir, tokenizer).generate(prompts, ...)`.

Light: importing this package imports neither torch nor transformers (each engine module does, when used).
"""

from __future__ import annotations
