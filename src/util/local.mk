noinst_LIBRARIES += libcvutil.a
libcvutil_a_SOURCES = \
	%reldir%/util.c %reldir%/util.h \
	%reldir%/err.c %reldir%/err.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/buf.c %reldir%/buf.h
