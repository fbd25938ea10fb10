"""What a run created, and undoing exactly that: the run's journal (journal.py), the
one-cluster-a-machine lock (lock.py), and cleanup from the records (undo.py)."""
