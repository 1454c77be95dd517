"""Generation engines: one interface, two back-ends, used by `checkpoint_inference`, `rewardkit generate` and
the demo.

- `hf` (`engines.hf.generate_texts`): the live transformers model, batched, left padded, greedy, chat templated,
  the prompts' shared prefix encoded once.

Light: importing this package imports neither torch nor transformers (each engine module does, when used).
"""

from __future__ import annotations
