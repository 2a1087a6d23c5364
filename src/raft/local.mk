noinst_LIBRARIES += libcvraft.a
libcvraft_a_SOURCES = %reldir%/cvraft.c %reldir%/cvraft.h

# FSM + state store replicated under libraft's in-memory raft_fixture.
check_PROGRAMS += tests/unit/t_raft_fixture
TESTS += tests/unit/t_raft_fixture
tests_unit_t_raft_fixture_SOURCES = tests/unit/t_raft_fixture.c
tests_unit_t_raft_fixture_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_raft_fixture_LDADD = libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
