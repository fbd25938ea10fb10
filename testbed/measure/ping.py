"""Parse iputils-ping output (Debian 12, iputils 20221126) into numbers an experiment can record.

Only the text format of iputils is understood (not busybox ping). The statistics summary is the
source of truth for counts and loss; reply lines only contribute their TTLs, because the summary
is printed even when no reply came back.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from testbed.errors import TestbedError
from testbed.measure import first_line

# "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.071 ms", optionally "(DUP!)" at the end,
# optionally "[epoch] " first (-D) and "host (addr)" instead of "addr" (without -n).
_REPLY_RE = re.compile(r"^(?:\[\d+(?:\.\d+)?\] )?\d+ bytes from .*?\bttl=(\d+)")

# "5 packets transmitted, 4 received, +1 duplicates, +2 errors, 20% packet loss, time 803ms".
# The loss figure is printf("%g"), hence "33.3333" or "100"; it is absent when nothing was sent.
_NUM = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
_SUMMARY_RE = re.compile(
    r"^(\d+) packets transmitted, (\d+) received"
    r"(?:, \+(\d+) duplicates)?"
    r"(?:, \+(\d+) corrupted)?"
    r"(?:, \+(\d+) errors)?"
    rf"(?:, ({_NUM})% packet loss)?",
    re.MULTILINE,
)

# "rtt min/avg/max/mdev = 0.037/0.047/0.071/0.012 ms", possibly followed by ", pipe 2".
_RTT_RE = re.compile(
    rf"^rtt min/avg/max/mdev = ({_NUM})/({_NUM})/({_NUM})/({_NUM}) ms", re.MULTILINE
)


@dataclass(frozen=True)
class PingResult:
    """One ping run; rtt_* are None when no reply came back (ping prints no rtt line then).

    ``ttls`` has one entry per reply line *including* "(DUP!)" lines, so it can be longer than
    ``received`` (which, like ping's summary, does not count duplicates; those are in
    ``duplicates``). "From ... Destination Host Unreachable" lines are errors, not replies.
    """

    transmitted: int
    received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    rtt_mdev_ms: float | None
    ttls: tuple[int, ...]
    duplicates: int = 0
    errors: int = 0

    @property
    def ttl(self) -> int | None:
        """The most common reply TTL (earliest seen wins a tie), a proxy for the hop count."""
        if not self.ttls:
            return None
        return Counter(self.ttls).most_common(1)[0][0]

    def metrics(self) -> dict[str, float]:
        """Flat numbers for a results table; values that were not measured are left out."""
        values: dict[str, float | None] = {
            "loss_pct": self.loss_pct,
            "rtt_min_ms": self.rtt_min_ms,
            "rtt_avg_ms": self.rtt_avg_ms,
            "rtt_max_ms": self.rtt_max_ms,
            "rtt_mdev_ms": self.rtt_mdev_ms,
            "ttl": self.ttl,
        }
        return {key: value for key, value in values.items() if value is not None}


def parse_ping(text: str) -> PingResult:
    """Parse the full stdout (+stderr) of one ping run; raise TestbedError if it never got going.

    A missing statistics summary means ping failed before sending (no route, bad address...),
    so there is nothing to measure and the caller must not record a silent 100% loss.
    """
    summary = _SUMMARY_RE.search(text)
    if summary is None:
        first = first_line(text)
        detail = f": {first}" if first else " (empty output)"
        raise TestbedError(f"ping: no statistics summary in output{detail}")
    transmitted, received = int(summary.group(1)), int(summary.group(2))
    if summary.group(6) is None:
        raise TestbedError(f"ping: no packets were transmitted ({first_line(summary.group(0))})")

    loss = float(summary.group(6))
    rtt = _RTT_RE.search(text)
    rtts: tuple[float | None, ...] = (
        tuple(float(rtt.group(i)) for i in range(1, 5)) if rtt else (None, None, None, None)
    )
    ttls = tuple(
        int(match.group(1))
        for match in (_REPLY_RE.match(line) for line in text.splitlines())
        if match is not None
    )
    _check(transmitted, received, loss, rtts, ttls)
    return PingResult(
        transmitted=transmitted,
        received=received,
        loss_pct=loss,
        rtt_min_ms=rtts[0],
        rtt_avg_ms=rtts[1],
        rtt_max_ms=rtts[2],
        rtt_mdev_ms=rtts[3],
        ttls=ttls,
        duplicates=int(summary.group(3) or 0),
        errors=int(summary.group(5) or 0),
    )


def _check(transmitted: int, received: int, loss: float, rtts: tuple[float | None, ...],
           ttls: tuple[int, ...]) -> None:
    """Refuse a summary that contradicts itself: a number made of it would be wrong."""
    if not transmitted > 0 or not 0 <= received <= transmitted:
        raise TestbedError(f"ping: {received} received of {transmitted} transmitted makes no "
                           "sense")
    expected = 100.0 * (transmitted - received) / transmitted
    if not 0.0 <= loss <= 100.0 or abs(loss - expected) > 0.01 * max(1.0, expected):
        raise TestbedError(f"ping: {loss:g} % loss contradicts {received} received of "
                           f"{transmitted}")
    if received and rtts[0] is None:
        raise TestbedError(f"ping: {received} replies but no rtt line")
    if rtts[0] is not None:
        low, avg, high, mdev = rtts
        assert avg is not None and high is not None and mdev is not None
        if not 0.0 <= low <= avg <= high or mdev < 0.0 or not received:
            raise TestbedError(f"ping: rtt min/avg/max/mdev {low}/{avg}/{high}/{mdev} make no "
                               f"sense for {received} replies")
    if any(not 0 < ttl <= 255 for ttl in ttls):
        raise TestbedError(f"ping: reply TTLs {sorted(set(ttls))} outside 1..255")


# What iputils prints when the kernel has no route to the destination: nothing was sent,
# and that is a fact about the network (every probe lost), not a failure to measure.
_NO_ROUTE_RE = re.compile(r"^ping: connect: Network is unreachable$", re.MULTILINE)


def ping_metrics(returncode: int, stdout: str, stderr: str) -> dict[str, float]:
    """The numbers of one ping run, from its exit status and output.

    A sensible statistics summary gives them; "Network is unreachable" (no route, exit 2)
    is 100 % loss. Anything else (the tool did not run, timed out, was misused, printed
    something that contradicts itself) raises TestbedError: it is not a measurement, and
    the caller records it as an error, never as loss.
    """
    try:
        return parse_ping(stdout).metrics()
    except TestbedError:
        if returncode == 2 and _NO_ROUTE_RE.search(f"{stdout}\n{stderr}"):
            return {"loss_pct": 100.0}
        detail = first_line(stderr) or first_line(stdout) or "no output"
        raise TestbedError(f"ping exited {returncode}: {detail}") from None


def ping_argv(
    dst: str,
    count: int = 5,
    interval_s: float = 0.2,
    deadline_s: float | None = None,
    wait_s: float = 1.0,
) -> list[str]:
    """Build the ping command as an argument list (no shell), numeric output only (-n).

    iputils takes fractional -i and -W but rejects a fractional -w deadline ("invalid
    argument"), so that is checked here rather than failing inside a running emulation.
    """
    if count < 1:
        raise TestbedError(f"ping: count must be at least 1, got {count}")
    if interval_s <= 0:
        raise TestbedError(f"ping: interval must be positive, got {interval_s:g} s")
    if wait_s <= 0:
        raise TestbedError(f"ping: wait must be positive, got {wait_s:g} s")
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", f"{wait_s:g}"]
    if deadline_s is not None:
        if deadline_s <= 0 or deadline_s != int(deadline_s):
            raise TestbedError(
                f"ping: deadline must be a positive whole number of seconds, got {deadline_s:g}"
            )
        argv += ["-w", str(int(deadline_s))]  # not :g, which turns 1e6 into "1e+06"
    argv.append(dst)
    return argv


# -- a probe stream through a fault: `ping -D -O -n -i <interval>` ----------------------------

_TS_REPLY_RE = re.compile(r"^\[(\d+(?:\.\d+)?)\] \d+ bytes from .*?\bicmp_seq=(\d+)\b.*?"
                          r"\btime=(\d+(?:\.\d+)?) ms")


@dataclass(frozen=True)
class Recovery:
    """A probe stream across one fault (times in seconds of the same clock as ping's -D):
    `outage_s` from the last reply before the fault to the first after it, `recovery_s`
    from the restoring action to the first reply, `lost` probes never answered; None
    where there was no reply to time from."""

    sent: int
    lost: int
    outage_s: float | None
    recovery_s: float | None


def timestamped_replies(text: str) -> list[tuple[float, int, float]]:
    """(reply time, icmp_seq, RTT ms) of each reply line of `ping -D` output."""
    out = []
    for line in text.splitlines():
        m = _TS_REPLY_RE.match(line.strip())
        if m:
            out.append((float(m.group(1)), int(m.group(2)), float(m.group(3))))
    return out


def recovery(text: str, t_fault: float, t_restore: float) -> Recovery:
    """How a probe stream went through a fault applied at `t_fault` and undone at
    `t_restore` (a probe counts as before the fault if it was sent before it: reply time
    minus its RTT)."""
    replies = timestamped_replies(text)
    seqs = [int(s) for s in re.findall(r"icmp_seq=(\d+)", text)]
    sent = max(seqs) if seqs else 0
    answered = {seq for _, seq, _ in replies}
    before = [t for t, _, rtt in replies if t - rtt / 1000 < t_fault]
    after = [t for t, _, rtt in replies if t - rtt / 1000 >= t_fault and t >= t_restore]
    first_after = min(after) if after else None
    return Recovery(
        sent=sent, lost=sum(1 for s in range(1, sent + 1) if s not in answered),
        outage_s=(first_after - max(before)) if first_after is not None and before else None,
        recovery_s=(first_after - t_restore) if first_after is not None else None)
