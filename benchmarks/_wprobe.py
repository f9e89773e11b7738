import cProfile, pstats, sys, time, logging
import harness
from jobs.runners.worker import Worker
from jobs.cronscript import JobCronScript
harness.fresh_database(); harness.configure()
section = sys.argv[1]
harness.load_jobs(int(sys.argv[2]))
Worker._wait = lambda self: self.request_stop()
script = JobCronScript(test_args=["--worker", "-q", section], commandline_config=True)
p = cProfile.Profile()
t = time.perf_counter()
p.enable()
code = script.run()
p.disable()
print("code", code, "seconds", time.perf_counter() - t, harness.load_average())
s = pstats.Stats(p); s.sort_stats("tottime").print_stats(30)
