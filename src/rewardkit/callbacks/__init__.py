"""Training callbacks (lora_save, checkpoint_inference, best_checkpoint), registered by name in builtins.py.

This package's __init__ stays empty of imports: `rewardkit list` loads only `params.py`; the callback classes
(which import transformers) load on first use through the registry's "module:attr" factories.
"""
