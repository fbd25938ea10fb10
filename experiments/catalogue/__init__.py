"""The catalogue: every experiment, one module each. measurements/ gives rows; the claims
give verdicts, in a package per part of the series: article/ (the seed article),
services/, outside/ and modes/ (other pod networks), each with what its claims share in
common.py. A claim's module holds its statement (on its class), the evidence its verdict
reads, the verdict (a pure `judge_*` function) and the experiment that gathers the
evidence. They import the framework (experiments/framework/) and their part's common.py,
never each other; registry.py lists them in the articles' order.
"""
