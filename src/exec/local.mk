# exec: the client role (fingerprint, registration, alloc/task runners, drivers, task shim, logs)
noinst_LIBRARIES += libcvexec.a
libcvexec_a_SOURCES = \
	%reldir%/client.c %reldir%/client.h \
	%reldir%/alloc_runner.c %reldir%/alloc_runner.h \
	%reldir%/cgroup.c %reldir%/cgroup.h \
	%reldir%/driver.c %reldir%/driver.h %reldir%/driver_exec.c %reldir%/driver_raw_exec.c \
	%reldir%/driver_docker.c %reldir%/driver_java.c %reldir%/driver_qemu.c \
	%reldir%/docker_api.c %reldir%/docker_api.h %reldir%/docker_task.c %reldir%/docker_task.h \
	%reldir%/fingerprint.c %reldir%/fingerprint.h \
	%reldir%/isolate.c %reldir%/isolate.h \
	%reldir%/logs.c %reldir%/logs.h \
	%reldir%/restart.c %reldir%/restart.h \
	%reldir%/shim.c %reldir%/shim.h \
	%reldir%/taskenv.c %reldir%/taskenv.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/t_exec_pure tests/unit/t_exec_run tests/unit/t_exec_client \
	tests/unit/t_exec_isolation
TESTS += tests/unit/t_exec_pure tests/unit/t_exec_run tests/unit/t_exec_client \
	tests/unit/t_exec_isolation
check_PROGRAMS += tests/unit/t_exec_docker
TESTS += tests/unit/t_exec_docker
tests_unit_t_exec_docker_SOURCES = tests/unit/t_exec_docker.c tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
tests_unit_t_exec_docker_LDADD = libcvexec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_docker_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_exec_pure_SOURCES = tests/unit/t_exec_pure.c
tests_unit_t_exec_pure_LDADD = libcvexec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_pure_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_exec_run_SOURCES = tests/unit/t_exec_run.c tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
tests_unit_t_exec_run_LDADD = libcvexec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_run_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_exec_client_SOURCES = tests/unit/t_exec_client.c tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
tests_unit_t_exec_client_LDADD = libcvexec.a libcvrpc.a libcvstate.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_client_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_t_exec_isolation_SOURCES = tests/unit/t_exec_isolation.c tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
tests_unit_t_exec_isolation_LDADD = libcvexec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_isolation_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
endif

# java and qemu drivers: what they share (config lists, argv, version probes)
libcvexec_a_SOURCES += %reldir%/driver_shared.c
if HAVE_CHECK
check_PROGRAMS += tests/unit/t_exec_vm_drivers
TESTS += tests/unit/t_exec_vm_drivers
tests_unit_t_exec_vm_drivers_SOURCES = tests/unit/t_exec_vm_drivers.c tests/unit/t_exec_helper.c tests/unit/t_exec_helper.h
tests_unit_t_exec_vm_drivers_LDADD = libcvexec.a libcvstructs.a libcvutil.a $(CHECK_LIBS) $(CV_SYSLIBS)
tests_unit_t_exec_vm_drivers_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
endif
