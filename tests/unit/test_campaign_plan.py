"""Campaign files: validation, the points and their topologies, each point's command,
and the tables and plots across points (pure; the runs themselves are root's)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments import campaign as cp
from experiments import campaign_report
from experiments import run as run_py
from testbed.errors import SpecError
from testbed.results.rundir import Measurement, RunDir

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, **doc: object) -> Path:
    base = {"name": "c", "topology": str(ROOT / "topologies" / "two-node.yaml"),
            "experiment": "throughput", "repeat": 2,
            "sweep": {"links.rate_mbit": [25, 50], "wiring": ["cni", "fast"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**base, **doc}))
    return path


def test_the_repositorys_campaign_loads() -> None:
    c = cp.load(ROOT / "campaigns" / "uplink-rate.yaml")
    assert len(c.points()) == 8 and c.experiment == "throughput"


def test_points_in_file_order_with_their_topologies_and_commands(tmp_path: Path) -> None:
    c = cp.load(write(tmp_path, sweep={"links.rate_mbit": [25, 50],
                                       "nodes.*.pods": [1, 3], "wiring": ["fast"]}))
    points = c.points()
    assert [p.id for p in points] == ["p01-rate_mbit=25-pods=1-wiring=fast",
                                      "p02-rate_mbit=25-pods=3-wiring=fast",
                                      "p03-rate_mbit=50-pods=1-wiring=fast",
                                      "p04-rate_mbit=50-pods=3-wiring=fast"]
    doc = cp.topology_of(c, points[1])
    assert doc["links"] == {"rate_mbit": 25} and [n["pods"] for n in doc["nodes"]] == [3, 3]
    assert "wiring" not in doc  # a run parameter, not a topology key
    assert c.topology["nodes"][0]["pods"] == 2  # the campaign's own document untouched
    argv = cp.run_argv(c, points[0], Path("t.yaml"), Path("out"))
    assert argv[2:] == ["--topology", "t.yaml", "--out", "out", "--experiment", "throughput",
                        "--repeat", "2", "--wiring", "fast"]


@pytest.mark.parametrize(("doc", "fragment"), [
    ({"sweep": {"links.rate_mbit": [0]}}, "rate_mbit"),  # the point's topology refused
    ({"sweep": {"wiring": ["telepathy"]}}, "sweep.wiring"),
    ({"sweep": {"repeat": [0]}}, "sweep.repeat"),
    ({"sweep": {"links.rate_mbit": []}}, "non-empty list"),
    ({"sweep": {"links.rate_mbit": [25, 25]}}, "names a value twice"),
    ({"sweep": {"name.*.x": [1]}}, "cannot apply"),
    ({"sweep": {}}, "must map parameters"),
    ({"name": "Bad Name"}, "lower-case"),
    ({"bogus": 1}, "unknown key"),
    ({"topology": "/nonexistent.yaml"}, "topology"),
])
def test_refusals(tmp_path: Path, doc: dict, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        cp.load(write(tmp_path, **doc))
    assert fragment in str(info.value)


def test_run_py_takes_the_rest_from_the_file(capsys) -> None:
    with pytest.raises(SystemExit):
        run_py.parse_args(["--campaign", "c.yaml", "--repeat", "2"])
    assert "drop --repeat" in capsys.readouterr().err


def fake_point(out: Path, point_id: str, values: dict, rate: float) -> dict:
    run = RunDir.create(out / "points" / point_id, "t")
    rows = []
    for r in (1, 2, 3):
        for path, value in (("node-node", rate * 0.96e6), ("pod-cross-node", rate * 0.95e6),
                            ("pod-localhost", 2e10)):
            rows.append(Measurement("throughput", r, "a", "b", "n", "m", path,
                                    "throughput_bps", value))
    run.add(rows)
    run.write_json("metadata.json", {"status": "complete",
                                     "fidelity": {"verdict": "ok", "reasons": []}})
    return {"id": point_id, "values": values, "run": str(run.path), "status": "complete"}


def test_tables_and_plots_across_points(tmp_path: Path) -> None:
    sweep = ["links.rate_mbit", "wiring"]
    points = [fake_point(tmp_path, f"p0{i}", {"links.rate_mbit": rate, "wiring": w}, rate)
              for i, (rate, w) in enumerate([(25, "cni"), (50, "cni"), (25, "fast"),
                                              (50, "fast")], 1)]
    state = {"name": "c", "source": "c.yaml", "sweep": sweep, "points": points}
    cp.write_outputs(tmp_path, state)
    df = pd.read_csv(tmp_path / "campaign.csv")
    assert list(df.columns[:3]) == ["point", "links.rate_mbit", "wiring"] and len(df) == 36
    binding = campaign_report.rate_binding(df)
    assert list(binding["of the rate"]) == [0.96] * 4
    ratios = pd.read_csv(tmp_path / "campaign_ratios.csv")
    cross = ratios[ratios["path"] == "pod-cross-node"]
    assert len(cross) == 4 and (abs(cross["median"] - 0.95 / 0.96) < 1e-9).all()
    text = (tmp_path / "campaign.md").read_text()
    assert "## Where the rate binds" in text and "| p04 " in text and "ok" in text
    for name in ("campaign_links_rate_mbit.png", "campaign_wiring.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    json.dumps(state)  # what campaign.json holds is plain JSON


def test_an_interrupted_point_is_waited_for_not_killed(tmp_path: Path) -> None:
    """Ctrl-C (here: a timer raising KeyboardInterrupt) while a point runs: its run is
    asked to stop and waited for through its teardown, never killed."""
    import signal
    import sys

    done = tmp_path / "tore-down"
    child = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(0.6)  # a teardown longer than subprocess.run's grace\n"
        f"    open({str(done)!r}, 'w').write('ok')\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "time.sleep(30)\n")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        assert cp._run_point([sys.executable, "-c", child]) == 130
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert done.read_text() == "ok"
