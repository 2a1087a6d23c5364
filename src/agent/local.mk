noinst_LIBRARIES += libcvagent.a
libcvagent_a_SOURCES = %reldir%/agent.c %reldir%/agent.h
caravan_SOURCES += %reldir%/main.c
# Order matters for static libraries: users before what they use.
caravan_LDADD += libcvcli.a libcvagent.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)
