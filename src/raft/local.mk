noinst_LIBRARIES += libcvraft.a
libcvraft_a_SOURCES = %reldir%/cvraft.c %reldir%/cvraft.h %reldir%/catchup.c %reldir%/catchup.h \
	%reldir%/io_guard.c %reldir%/io_guard.h

# FSM + state store replicated under libraft's in-memory raft_fixture.
check_PROGRAMS += tests/unit/t_raft_fixture
TESTS += tests/unit/t_raft_fixture
tests_unit_t_raft_fixture_SOURCES = tests/unit/t_raft_fixture.c
tests_unit_t_raft_fixture_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_raft_fixture_LDADD = libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# The I/O guard against libraft's real uv storage (truncation during a snapshot write).
check_PROGRAMS += tests/unit/t_raft_io_guard
TESTS += tests/unit/t_raft_io_guard
tests_unit_t_raft_io_guard_SOURCES = tests/unit/t_raft_io_guard.c
tests_unit_t_raft_io_guard_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_raft_io_guard_LDADD = libcvraft.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# Two real cvraft servers on loopback: an apply completion that proposes again while the
# connection it was delivered on ends (no nested uv_run; test_chaos's double free).
check_PROGRAMS += tests/unit/t_raft_transport
TESTS += tests/unit/t_raft_transport
tests_unit_t_raft_transport_SOURCES = tests/unit/t_raft_transport.c
tests_unit_t_raft_transport_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_raft_transport_LDADD = libcvraft.a libcvrpc.a libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# A compacted follower caught up from index 1 by a never-compacted leader (catchup.h):
# the trimming rule, and libraft's fixture with and without the guard.
check_PROGRAMS += tests/unit/t_raft_catchup
TESTS += tests/unit/t_raft_catchup
tests_unit_t_raft_catchup_SOURCES = tests/unit/t_raft_catchup.c
tests_unit_t_raft_catchup_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_raft_catchup_LDADD = libcvraft.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
