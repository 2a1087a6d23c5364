noinst_LIBRARIES += libcvraft.a
libcvraft_a_SOURCES = %reldir%/cvraft.c %reldir%/cvraft.h
