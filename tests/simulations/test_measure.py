"""Peak memory over a process tree (summed RSS and PSS, who held what) and CPU per thread."""

import subprocess
import sys
import threading
import time

import psutil

from fedrec.simulations.measure import PeakMemory, ThreadSampler, import_rss, process_role

_HOLD = "import time; x = bytearray(64 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(2)"


def test_the_peak_of_another_process_tree_is_summed_with_its_processes() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_HOLD!r}])",
        ]
    )
    with PeakMemory(interval_s=0.05, pid=parent.pid) as mem:
        parent.wait()
    assert mem.peak_bytes >= 64 * 2**20 and mem.peak_pss_bytes >= 64 * 2**20
    rows = mem.breakdown_mib()
    assert len(rows) == 2 and rows[0]["rss"] >= 64 > rows[1]["rss"]  # the child held it
    assert (
        rows[1]["role"].startswith("driver")
        and abs(sum(r["rss"] for r in rows) * 2**20 - mem.peak_bytes) < 1
    )


def test_ray_processes_are_named_by_their_titles_and_scripts() -> None:
    me = psutil.Process()
    assert process_role(me, me.pid).startswith("driver")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)", "log_monitor.py"])
    try:
        time.sleep(0.2)
        assert process_role(psutil.Process(child.pid), me.pid) == "Ray log monitor"
    finally:
        child.kill()
        child.wait()


def test_import_costs_are_measured_in_a_fresh_interpreter() -> None:
    alone, numpy = import_rss(()), import_rss(("numpy",))
    assert set(alone) == {"rss", "uss", "pss"} and numpy["rss"] > alone["rss"]


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def test_a_busy_thread_is_charged_its_cpu_under_its_folded_role() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=_spin, args=(stop,), name="Thread-41 (spin)")
    with ThreadSampler(interval_s=0.005) as sampler:
        worker.start()
        time.sleep(0.5)
    stop.set()  # after the window: a thread that ends inside it leaves no CPU to read
    worker.join()
    rows = {row["thread"]: row for row in sampler.summary(threads=50)}
    assert rows["spin"]["cpu_s"] > 0.1  # a spinning thread holds the GIL most of the window
    assert rows["spin"]["where"] and rows["spin"]["where"][0]["function"].startswith(
        "test_measure.py:"
    )
    shares = [row["cpu_s"] for row in sampler.summary(threads=50)]
    assert shares == sorted(shares, reverse=True)
    assert ThreadSampler.role("ThreadPoolExecutor-3_1") == "ThreadPoolExecutor-N_N"
