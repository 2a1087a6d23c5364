# jobspec: HCL2 native syntax (lexer, parser, evaluator, functions, hcl2json dump) and the
# Nomad jobspec decoder. Pure library: no I/O besides the file() function.
noinst_LIBRARIES += libcvjobspec.a
libcvjobspec_a_SOURCES = \
	%reldir%/hcl.h \
	%reldir%/hcl_lex.c \
	%reldir%/hcl_parse.c \
	%reldir%/hcl_eval.c \
	%reldir%/hcl_func.c \
	%reldir%/hcl_dump.c \
	%reldir%/hcl_json.c \
	%reldir%/jobspec.c %reldir%/jobspec.h

# A small tool: prints a file in hcl2json's shape (for tests/oracle/run.sh).
noinst_PROGRAMS += tests/oracle/cv-hcl2json
tests_oracle_cv_hcl2json_SOURCES = tests/oracle/cv_hcl2json.c
tests_oracle_cv_hcl2json_LDADD = libcvjobspec.a libcvstructs.a libcvutil.a $(CV_SYSLIBS)

if HAVE_CHECK
check_PROGRAMS += tests/unit/t_hcl tests/unit/t_hcl_json tests/unit/t_jobspec
TESTS += tests/unit/t_hcl tests/unit/t_hcl_json tests/unit/t_jobspec
tests_unit_t_hcl_SOURCES = tests/unit/t_hcl.c
tests_unit_t_hcl_LDADD = libcvjobspec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_hcl_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_hcl_json_SOURCES = tests/unit/t_hcl_json.c
tests_unit_t_hcl_json_LDADD = libcvjobspec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_hcl_json_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DJOBSPEC_FIXTURES=\"$(abs_top_srcdir)/tests/jobspec\"
tests_unit_t_jobspec_SOURCES = tests/unit/t_jobspec.c
tests_unit_t_jobspec_LDADD = libcvjobspec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_jobspec_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DJOBSPEC_FIXTURES=\"$(abs_top_srcdir)/tests/jobspec\"
endif

TESTS += tests/oracle/run.sh
EXTRA_DIST += tests/oracle/run.sh tests/oracle/compare.js tests/jobspec/json

if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_jobspec
# The module's sources are compiled into the harness so that they carry coverage
# instrumentation (configure --enable-fuzz CC=clang).
tests_fuzz_fuzz_jobspec_SOURCES = tests/fuzz/fuzz_jobspec.c \
	%reldir%/hcl_lex.c %reldir%/hcl_parse.c %reldir%/hcl_eval.c %reldir%/hcl_func.c \
	%reldir%/hcl_dump.c %reldir%/hcl_json.c %reldir%/jobspec.c
tests_fuzz_fuzz_jobspec_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_jobspec_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_jobspec_LDADD = libcvstructs.a libcvutil.a $(CV_SYSLIBS)
endif
