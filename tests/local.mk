# Unit tests of the lead's modules (other modules register theirs in their own local.mk).
if HAVE_CHECK
check_PROGRAMS += tests/unit/t_state tests/unit/t_structs tests/unit/t_fsm
TESTS += tests/unit/t_state tests/unit/t_structs tests/unit/t_fsm
endif
tests_unit_t_state_SOURCES = tests/unit/t_state.c
tests_unit_t_state_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_state_LDADD = libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_structs_SOURCES = tests/unit/t_structs.c
tests_unit_t_structs_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_structs_LDADD = libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_fsm_SOURCES = tests/unit/t_fsm.c
tests_unit_t_fsm_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_fsm_LDADD = libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# t_exec_isolation runs its tasks through the shared alloc-runner harness and base
# directory of t_exec_helper.c (its other sources are listed in src/exec/local.mk).
if HAVE_CHECK
tests_unit_t_exec_isolation_SOURCES += tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
endif
