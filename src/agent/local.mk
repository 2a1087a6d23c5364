caravan_SOURCES += %reldir%/main.c
caravan_LDADD += libcvstructs.a libcvutil.a $(CV_SYSLIBS)
