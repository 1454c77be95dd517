"""Best-checkpoint selection: the inference-file format, ranking, the paired bootstrap, the training-reward check."""
