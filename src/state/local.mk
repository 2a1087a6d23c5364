noinst_LIBRARIES += libcvstate.a
libcvstate_a_SOURCES = \
	%reldir%/treap.c %reldir%/treap.h \
	%reldir%/state.c %reldir%/state.h \
	%reldir%/fsm.c %reldir%/fsm.h
