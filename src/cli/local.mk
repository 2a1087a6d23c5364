# The command-line interface: one file per command (cmd_<noun>_<verb>.c), a shared core
# (flags, HTTP client, API helpers, formatting, renderers, evaluation monitor).
noinst_LIBRARIES += libcvcli.a
libcvcli_a_SOURCES = \
	%reldir%/cli.c %reldir%/cli.h %reldir%/cli_int.h \
	%reldir%/flags.c %reldir%/http.c %reldir%/api.c %reldir%/format.c \
	%reldir%/views.c %reldir%/monitor.c %reldir%/jobfile.c \
	%reldir%/cmd_version.c %reldir%/cmd_status.c \
	%reldir%/cmd_node_status.c %reldir%/cmd_server_members.c \
	%reldir%/cmd_job_init.c %reldir%/cmd_job_run.c %reldir%/cmd_job_status.c \
	%reldir%/cmd_job_stop.c %reldir%/cmd_job_validate.c %reldir%/cmd_job_inspect.c \
	%reldir%/cmd_alloc_status.c %reldir%/cmd_alloc_logs.c %reldir%/cmd_eval_status.c %reldir%/cmd_operator_raft.c %reldir%/cmd_operator_gossip_keyring.c %reldir%/cmd_operator_snapshot.c %reldir%/cmd_server_join.c %reldir%/cmd_system_gc.c \
	%reldir%/cmd_alloc_stop.c %reldir%/cmd_alloc_restart.c %reldir%/cmd_alloc_signal.c

if HAVE_CHECK
check_PROGRAMS += tests/unit/t_cli
TESTS += tests/unit/t_cli
tests_unit_t_cli_SOURCES = tests/unit/t_cli.c
tests_unit_t_cli_LDADD = libcvcli.a libcvjobspec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_cli_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
endif
