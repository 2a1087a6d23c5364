# sched: the pure scheduling core (no libevent, no sockets, no clock).
noinst_LIBRARIES += libcvsched.a
libcvsched_a_SOURCES = \
	%reldir%/sched.h %reldir%/sched_int.h \
	%reldir%/sutil.c %reldir%/sutil.h \
	%reldir%/feasible.c \
	%reldir%/res.c \
	%reldir%/generic.c \
	%reldir%/plan_check.c
