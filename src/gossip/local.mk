# gossip: memberlist/serf wire codec, keyring, SWIM core (pure), serf layer and shell.
# libcvgossipcore.a has no libevent and no sockets: the simulator and unit tests link it
# alone, so a stray event_*() or socket() call fails to link.
noinst_LIBRARIES += libcvgossipcore.a
libcvgossipcore_a_SOURCES = \
	%reldir%/codec.c %reldir%/codec.h \
	%reldir%/keyring.c %reldir%/keyring.h \
	%reldir%/rng.h \
	%reldir%/swim.c %reldir%/swim.h \
	%reldir%/serf.c %reldir%/serf.h

check_PROGRAMS += tests/unit/t_gossip_codec
TESTS += tests/unit/t_gossip_codec
tests_unit_t_gossip_codec_SOURCES = tests/unit/t_gossip_codec.c
tests_unit_t_gossip_codec_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_gossip_codec_LDADD = libcvgossipcore.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# libFuzzer harness (clang): ./configure CC=clang --enable-fuzz
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_gossip_packet
tests_fuzz_fuzz_gossip_packet_SOURCES = tests/fuzz/fuzz_gossip_packet.c
tests_fuzz_fuzz_gossip_packet_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_gossip_packet_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address
tests_fuzz_fuzz_gossip_packet_LDADD = libcvgossipcore.a libcvutil.a $(CV_SYSLIBS)
endif

# Deterministic simulation of the SWIM core (tests/sim/) and its tests.
noinst_LIBRARIES += libcvgossipsim.a
libcvgossipsim_a_SOURCES = tests/sim/sim_gossip.c tests/sim/sim_gossip.h
check_PROGRAMS += tests/sim/sim_gossip_test
TESTS += tests/sim/sim_gossip_test
tests_sim_sim_gossip_test_SOURCES = tests/sim/sim_gossip_test.c
tests_sim_sim_gossip_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_sim_sim_gossip_test_LDADD = libcvgossipsim.a libcvgossipcore.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# Benchmark on the simulator (not run by make check): bench/bench_gossip [N ...]
noinst_PROGRAMS += bench/bench_gossip
bench_bench_gossip_SOURCES = bench/bench_gossip.c
bench_bench_gossip_LDADD = libcvgossipsim.a libcvgossipcore.a libcvutil.a $(CV_SYSLIBS)

check_PROGRAMS += tests/unit/t_gossip_swim
TESTS += tests/unit/t_gossip_swim
tests_unit_t_gossip_swim_SOURCES = tests/unit/t_gossip_swim.c
tests_unit_t_gossip_swim_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_gossip_swim_LDADD = libcvgossipcore.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

check_PROGRAMS += tests/unit/t_gossip_serf
TESTS += tests/unit/t_gossip_serf
tests_unit_t_gossip_serf_SOURCES = tests/unit/t_gossip_serf.c
tests_unit_t_gossip_serf_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_gossip_serf_LDADD = libcvgossipcore.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# The libevent shell: one pool (UDP+TCP on one port) around the serf core.
noinst_LIBRARIES += libcvgossip.a
libcvgossip_a_SOURCES = %reldir%/pool.c %reldir%/pool.h

check_PROGRAMS += tests/unit/t_gossip_pool
TESTS += tests/unit/t_gossip_pool
tests_unit_t_gossip_pool_SOURCES = tests/unit/t_gossip_pool.c
tests_unit_t_gossip_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_gossip_pool_LDADD = libcvgossip.a libcvgossipcore.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# Interop helper: one pool with given tags, member list dumped to a file (tests/interop/).
noinst_PROGRAMS += tests/interop/cv_gossip_node
tests_interop_cv_gossip_node_SOURCES = tests/interop/cv_gossip_node.c
tests_interop_cv_gossip_node_LDADD = libcvgossip.a libcvgossipcore.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)
