# Benchmarks: `make bench` builds and runs them, printing each figure with its target.
EXTRA_DIST += bench/bench_agent.py bench/bench_serf.py bench/bench_tasks.py
bench: all bench/bench_sched bench/cv_load bench/bench_raft_bare
	CARAVAN_BIN=$(abs_builddir)/caravan $(top_srcdir)/bench/bench_agent.py
	CARAVAN_BIN=$(abs_builddir)/caravan $(top_srcdir)/bench/bench_tasks.py
	./bench/bench_sched
	./bench/bench_gossip
	CARAVAN_BIN=$(abs_builddir)/caravan $(top_srcdir)/bench/bench_serf.py
	CARAVAN_BIN=$(abs_builddir)/caravan CV_LOAD=$(abs_builddir)/bench/cv_load \
	  BENCH_RAFT_BARE=$(abs_builddir)/bench/bench_raft_bare $(top_srcdir)/bench/bench_cluster.py
.PHONY: bench

# Cluster benchmarks (issue 4): a load tool (HTTP writes, fake client nodes over RPC) and a
# bare libraft program for the write-throughput comparison.
noinst_PROGRAMS += bench/cv_load bench/bench_raft_bare
bench_cv_load_SOURCES = bench/cv_load.c
bench_cv_load_LDADD = libcvrpc.a libcvstate.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)
bench_bench_raft_bare_SOURCES = bench/bench_raft_bare.c
bench_bench_raft_bare_LDADD = libcvutil.a $(CV_SYSLIBS)
EXTRA_DIST += bench/bench_cluster.py
