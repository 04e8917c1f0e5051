"""procorefs benchmarks: figures and ratios measured side by side in one run (``python -m bench``).

Owns everything that measures procorefs: the processes a run starts (the emulator, procorefs
mounts, the rclone peer), the workloads, their statistics and the result files
(``bench/results/latest.md`` and ``latest.json``). The modules split pure logic (``stats``,
``calls``, ``table``, ``procfs``, ``profile``'s parsing, ``io``'s helpers; unit-tested in
``tests/unit/test_bench_*.py``) from the parts that start processes (``procs``: the emulator
and procorefs mounts; ``peer``: rclone) and run the workloads (``runner``).
See ``docs/performance.md`` for what each figure means and what limits it.
"""
