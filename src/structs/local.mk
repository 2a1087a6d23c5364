noinst_LIBRARIES += libcvstructs.a
libcvstructs_a_SOURCES = \
	%reldir%/stype.c %reldir%/stype.h \
	%reldir%/structs.c %reldir%/structs.h \
	%reldir%/msgs.c %reldir%/msgs.h
