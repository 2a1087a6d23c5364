# Benchmarks: `make bench` builds and runs them, printing each figure with its target.
EXTRA_DIST += bench/bench_agent.py
bench: all bench/bench_sched
	CARAVAN_BIN=$(abs_builddir)/caravan $(top_srcdir)/bench/bench_agent.py
	./bench/bench_sched
.PHONY: bench
