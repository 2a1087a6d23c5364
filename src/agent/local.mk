noinst_LIBRARIES += libcvagent.a
libcvagent_a_SOURCES = %reldir%/agent.c %reldir%/agent.h %reldir%/agent_config.c %reldir%/agent_config.h
caravan_SOURCES += %reldir%/main.c
# Order matters for static libraries: users before what they use.
caravan_LDADD += libcvcli.a libcvagent.a libcvhttp.a libcvserver.a libcvraft.a libcvrpc.a \
	libcvsched.a libcvexec.a libcvjobspec.a libcvgossip.a libcvgossipcore.a libcvstate.a \
	libcvstructs.a libcvutil.a $(CV_SYSLIBS)
