noinst_LIBRARIES += libcvrpc.a
libcvrpc_a_SOURCES = %reldir%/rpc.h %reldir%/endpoint.c %reldir%/endpoint.h \
	%reldir%/transport.c %reldir%/transport.h
