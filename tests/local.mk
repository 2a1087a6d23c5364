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
