"""The summary `throughput.py` prints after its rounds: every mode's median
with its load averages, its ratios to the baselines of the same run, and
issue 15's targets table, each row as a ratio measured in this run.

Tables are Markdown, ready to paste into BENCHMARKS.md.
"""

import statistics

# A missed target within 15% of it (the allowance, if explained).
WITHIN = 0.85

# Issue 15's targets: (row, framework mode, baseline, target).
# A baseline is a mode name or "pgqueuer-best".
TARGETS = [
    ("per-job-commit, 1 process vs pgbench (2 clients)",
     "per-job-commit", "pgbench-2", 0.9),
    ("worker-per-job, 2 processes vs pgbench (2 clients)",
     "worker-per-job-2", "pgbench-2", 1.2),
    ("group commit, 1 process vs PgQueuer best",
     "group-commit", "pgqueuer-best", 1.3),
    ("worker, 2 processes (group) vs PgQueuer best",
     "worker-2", "pgqueuer-best", 1.5),
    ("framework vs raw ceiling, group (1 process)",
     "group-commit", "raw-group-1", 0.7),
    ("framework vs raw ceiling, group (also: worker, 2 processes)",
     "worker-2", "raw-group-2", 0.7),
    ("worker at INFO vs -q (2 processes)",
     "worker-info-2", "worker-2", 0.9),
]


class Figures:
    """One size's measurements: ``{mode: [(jobs/s or None, load, steal)]}``
    (see `throughput.measure`)."""

    def __init__(self, results, repeat):
        self.results = results
        self.repeat = repeat

    def rounds(self, name):
        """The mode's rate in each round (None: failed or not run)."""
        if name.endswith("-best"):
            return self.best_rounds(name[:-len("-best")])
        rows = self.results.get(name)
        if rows is None:
            return [None] * self.repeat
        return [row[0] for row in rows]

    def median(self, name):
        if name.endswith("-best"):
            best = self.best(name[:-len("-best")])
            return best[1] if best else None
        rates = [rate for rate in self.rounds(name) if rate is not None]
        return statistics.median(rates) if rates else None

    def peers(self, system):
        return [name for name in self.results
                if name.startswith(system + "-")]

    def best(self, system):
        """``(mode, median)`` of the system's best configuration."""
        medians = [(name, self.median(name)) for name in self.peers(system)]
        medians = [item for item in medians if item[1] is not None]
        return max(medians, key=lambda item: item[1]) if medians else None

    def best_rounds(self, system):
        """The best configuration's rate within each round."""
        best = []
        for index in range(self.repeat):
            rates = [self.results[name][index][0]
                     for name in self.peers(system)]
            rates = [rate for rate in rates if rate is not None]
            best.append(max(rates) if rates else None)
        return best

    def ratio(self, name, baseline):
        """``(ratio of medians, [ratio within each round])`` or None."""
        top, bottom = self.median(name), self.median(baseline)
        if not top or not bottom:
            return None
        rounds = [a / b if a and b else None for a, b in zip(
            self.rounds(name), self.rounds(baseline))]
        return top / bottom, rounds


def ratio_text(ratio):
    if ratio is None:
        return "n/a"
    overall, rounds = ratio
    return "%.2fx [%s]" % (overall, ", ".join(
        "%.2f" % r if r is not None else "-" for r in rounds))


def rate_text(rate):
    return "%.0f" % rate if rate is not None else "failed"


def round_text(rate, load, steal=None):
    """One round's figure: ``jobs/s @ load``, and the CPU steal share when
    it took more than 1%."""
    text = "%s @ %.2f" % (rate_text(rate), load[0])
    if steal is not None and steal > 0.01:
        text += " (steal %.0f%%)" % (100 * steal)
    return text


def summary(size, modes, results, repeat):
    """Print the tables for one size."""
    figures = Figures(results, repeat)
    print()
    print("## %d jobs: medians of %d interleaved rounds" % (size, repeat))
    print()
    print("Each round: jobs/s @ 1-min load average at its end, and the share"
          " of CPU time the hypervisor took (steal) when above 1%. Ratios: of"
          " the medians [within each round]. A missed target is \"within"
          " 15%\" when the ratio is at least 0.85 of it.")
    print()
    print("| mode | jobs/s (median) | min–max | rounds | vs pgbench, same"
          " clients | vs raw ceiling |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        rows = results[mode.name]
        rates = [row[0] for row in rows if row[0] is not None]
        median = figures.median(mode.name)
        spread = ("%.0f–%.0f" % (min(rates), max(rates))) if rates else ""
        rounds = ", ".join(round_text(*row) for row in rows)
        pgbench = ceiling = ""
        if mode.kind in ("framework", "raw"):
            pgbench = ratio_text(figures.ratio(
                mode.name, "pgbench-%d" % mode.processes))
        if mode.ceiling:
            ceiling = ratio_text(figures.ratio(mode.name, mode.ceiling))
        print("| %s | %s | %s | %s | %s | %s |" % (
            mode.name, rate_text(median), spread, rounds, pgbench, ceiling))
    print()
    for system, label in (("pgqueuer", "PgQueuer"),
                          ("procrastinate", "Procrastinate")):
        best = figures.best(system)
        if best:
            print("%s best: %s, %.0f jobs/s (median)" % (label, best[0],
                                                        best[1]))
    print()
    print("### Issue 15's targets, %d jobs (this run)" % size)
    print()
    print("| row | measured | target | |")
    print("|---|---|---|---|")
    for row, name, baseline, target in TARGETS:
        ratio = figures.ratio(name, baseline)
        verdict = ("" if ratio is None
                   else "met" if ratio[0] >= target
                   else "within 15%" if ratio[0] >= WITHIN * target
                   else "missed")
        print("| %s | %s | ≥ %.1fx | %s |" % (row, ratio_text(ratio), target,
                                             verdict))
