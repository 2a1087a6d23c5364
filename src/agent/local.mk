noinst_LIBRARIES += libcvagent.a
libcvagent_a_SOURCES = %reldir%/agent.c %reldir%/agent.h %reldir%/agent_config.c %reldir%/agent_config.h \
	%reldir%/join.c %reldir%/join.h %reldir%/join_plan.c %reldir%/join_plan.h
caravan_SOURCES += %reldir%/main.c
# Order matters for static libraries: users before what they use.
caravan_LDADD += libcvcli.a libcvagent.a libcvhttp.a libcvserver.a libcvraft.a libcvrpc.a \
	libcvsched.a libcvexec.a libcvjobspec.a libcvgossip.a libcvgossipcore.a libcvstate.a \
	libcvstructs.a libcvutil.a $(CV_SYSLIBS)
# The join plan's pure core, built alone: a stray libevent or gossip call fails to link.
if HAVE_CHECK
check_PROGRAMS += tests/unit/t_join_plan
TESTS += tests/unit/t_join_plan
endif
tests_unit_t_join_plan_SOURCES = tests/unit/t_join_plan.c %reldir%/join_plan.c %reldir%/join_plan.h
tests_unit_t_join_plan_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_join_plan_LDADD = $(CHECK_LIBS)
