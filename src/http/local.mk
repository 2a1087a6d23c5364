noinst_LIBRARIES += libcvhttp.a
libcvhttp_a_SOURCES = %reldir%/http.c %reldir%/http.h
