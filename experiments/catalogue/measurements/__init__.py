"""The measurements, one module each: reachability, latency and hops along every path
class (reachability.py), throughput (throughput.py), recovery from faults (faults.py), and
the pod networks compared on clusters of their own (compare_modes.py, which also adds its
own section to the run's report). They give rows, not verdicts."""
