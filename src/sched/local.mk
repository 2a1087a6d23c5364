# sched: the pure scheduling core (no libevent, no sockets, no clock).
noinst_LIBRARIES += libcvsched.a
libcvsched_a_SOURCES = \
	%reldir%/sched.h %reldir%/sched_int.h \
	%reldir%/sutil.c %reldir%/sutil.h \
	%reldir%/feasible.c \
	%reldir%/res.c \
	%reldir%/generic.c \
	%reldir%/plan_check.c \
	%reldir%/broker.c %reldir%/broker.h \
	%reldir%/blocked.c

if HAVE_CHECK
check_PROGRAMS += tests/unit/t_sched_generic tests/unit/t_sched_plan tests/unit/t_sched_broker
TESTS += tests/unit/t_sched_generic tests/unit/t_sched_plan tests/unit/t_sched_broker
endif
tests_unit_t_sched_generic_SOURCES = tests/unit/t_sched_generic.c \
	tests/unit/t_sched_helper.c tests/unit/t_sched_helper.h
tests_unit_t_sched_generic_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_sched_generic_LDADD = libcvsched.a libcvstate.a libcvstructs.a libcvutil.a \
	$(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_sched_plan_SOURCES = tests/unit/t_sched_plan.c \
	tests/unit/t_sched_helper.c tests/unit/t_sched_helper.h
tests_unit_t_sched_plan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_sched_plan_LDADD = libcvsched.a libcvstate.a libcvstructs.a libcvutil.a \
	$(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_sched_broker_SOURCES = tests/unit/t_sched_broker.c
tests_unit_t_sched_broker_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_sched_broker_LDADD = libcvsched.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)

# Deterministic simulation of workers, broker and plan applier (tests/sim/).
check_PROGRAMS += tests/sim/sim_sched
TESTS += tests/sim/sim_sched
tests_sim_sim_sched_SOURCES = tests/sim/sim_sched.c tests/unit/t_sched_helper.c \
	tests/unit/t_sched_helper.h
tests_sim_sim_sched_LDADD = libcvsched.a libcvstate.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)

noinst_PROGRAMS += bench/bench_sched
bench_bench_sched_SOURCES = bench/bench_sched.c
bench_bench_sched_LDADD = libcvsched.a libcvstate.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)
