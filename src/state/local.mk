noinst_LIBRARIES += libcvstate.a
libcvstate_a_SOURCES = \
	%reldir%/treap.c %reldir%/treap.h \
	%reldir%/state.c %reldir%/state.h \
	%reldir%/fsm.c %reldir%/fsm.h

if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_msgpack
# The codec and the FSM are compiled into the harness so that they carry coverage
# instrumentation (configure --enable-fuzz CC=clang).
tests_fuzz_fuzz_msgpack_SOURCES = tests/fuzz/fuzz_msgpack.c \
	src/structs/stype.c src/structs/structs.c src/structs/msgs.c src/structs/mpcheck.c \
	%reldir%/treap.c %reldir%/state.c %reldir%/fsm.c
tests_fuzz_fuzz_msgpack_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_msgpack_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_msgpack_LDADD = libcvutil.a $(CV_SYSLIBS)
endif

if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_fsm
# Raw raft entries applied to the FSM (fresh and populated states, leader and follower
# forms); instrumented as fuzz_msgpack.
tests_fuzz_fuzz_fsm_SOURCES = tests/fuzz/fuzz_fsm.c \
	src/structs/stype.c src/structs/structs.c src/structs/msgs.c src/structs/mpcheck.c \
	%reldir%/treap.c %reldir%/state.c %reldir%/fsm.c
tests_fuzz_fuzz_fsm_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_fsm_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_fsm_LDADD = libcvutil.a $(CV_SYSLIBS)
endif
