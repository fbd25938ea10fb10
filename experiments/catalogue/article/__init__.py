"""The seed article's claims, one module each: its statement (on its class), the evidence
its verdict reads, the verdict (a pure `judge_*` function) and the experiment that
gathers the evidence, most on the suite's shared cluster. registry.py lists them in the
article's order."""
