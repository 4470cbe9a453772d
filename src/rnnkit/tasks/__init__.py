"""Tasks: each knows its data format, model head, loss and metrics, and nothing about optimizers.

- `rnnkit.tasks.lm`: character / word language models (RNNLM) and their verbs (fit, resume, evaluate, sample).
- `rnnkit.tasks.nplm`: Bengio et al. (2003)'s feed-forward neural language model.
"""
