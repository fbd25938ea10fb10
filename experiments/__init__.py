"""Experiments: measurements of the pod network and the article's claims, each a class
with a name, a kind, what it needs and `run(ctx)`, which yields its results.

    framework/    what every experiment is written against, importing nothing else here:
                  base.py (the Experiment protocol, Claim, Context, Params, the result
                  types), verdicts.py (the verdicts claims give, pure), needs.py,
                  probes.py (tiny programs run in pods and hosts), svc_common.py
    catalogue/    the experiments, one module each: measurements/, and the claims by
                  part of the series, article/, services/, outside/, modes/ (each part's
                  shared helpers in its common.py)
    registry.py   every experiment, in the articles' order and in the suite's
    claims.py     the claims table, {name: statement} in the articles' order, from the
                  registry (each claim's class carries its name and statement)
    suite.py      runs a selection: the shared cluster, then those with clusters of
                  their own; writes each result as it comes
    session.py    one run: plan, resume, metadata, the fidelity monitor, the report
    run.py        the command line: arguments and one call
"""
