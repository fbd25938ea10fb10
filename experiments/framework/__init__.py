"""The framework every experiment is written against, apart from what runs them: what an
experiment is (base.py), the verdicts a claim gives (verdicts.py), what a claim needs of
its topology (needs.py), the tiny programs run in pods and hosts (probes.py), and the
services cluster the claims about Services and traffic from outside share (svc_common.py).

It imports nothing else of experiments/, so the catalogue (one module per claim) can
import it while the registry and the runner import the catalogue, without a cycle
between folders.
"""
