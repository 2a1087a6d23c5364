noinst_LIBRARIES += libcvserver.a
libcvserver_a_SOURCES = \
	%reldir%/server.c %reldir%/server.h %reldir%/server_int.h \
	%reldir%/leader.c %reldir%/membership.c %reldir%/gc.c
