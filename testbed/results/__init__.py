"""Run directories and reports: atomic files and tidy rows (rundir.py), where a run ran
(provenance.py), summaries, tables and plots (report.py, plots.py), the self-contained
HTML page (html.py), and progress on the console (progress.py). Reports render plain
rows: nothing here knows an experiment."""
