"""The catalogue: the claims, one module each, in a package per part of the series
(services/, outside/, modes/), each package with what its claims share (common.py).
A claim's module holds its statement (on its class), the evidence its verdict reads,
the verdict (a pure `judge_*` function) and the experiment that gathers the evidence.
They import the framework (experiments/framework/) and nothing else of experiments/;
registry.py lists them in the articles' order."""
