# sched: filled in as the module lands
