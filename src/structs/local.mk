noinst_LIBRARIES += libcvstructs.a
libcvstructs_a_SOURCES = \
	%reldir%/stype.c %reldir%/stype.h \
	%reldir%/structs.c %reldir%/structs.h \
	%reldir%/msgs.c %reldir%/msgs.h \
	%reldir%/mpcheck.c %reldir%/mpcheck.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/t_mpcheck
TESTS += tests/unit/t_mpcheck
tests_unit_t_mpcheck_SOURCES = tests/unit/t_mpcheck.c
tests_unit_t_mpcheck_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_mpcheck_LDADD = libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
endif
