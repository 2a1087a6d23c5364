noinst_LIBRARIES += libcvcli.a
libcvcli_a_SOURCES = %reldir%/cli.c %reldir%/cli.h
