"""Experiments: measurements of the pod network and the article's claims, each a class
with a name, a kind, what it needs and `run(ctx)`, which yields its results.

    framework/    what every experiment is written against, importing nothing else here:
                  base.py (the Experiment protocol, Claim, Context, Params, the result
                  types), verdicts.py (the verdicts claims give, pure), needs.py,
                  probes.py (tiny programs run in pods and hosts), svc_common.py
    claims.py     the claims table, {name: statement} in the articles' order, from the
                  registry (each claim's class carries its name and statement)
    registry.py   every experiment, in the articles' order and in the suite's
    suite.py      runs a selection: the shared cluster, then those with clusters of
                  their own; writes each result as it comes
    run.py        the command: arguments, resume, metadata, the report
    <one module per experiment>
"""
